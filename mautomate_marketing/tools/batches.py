from odoo import modules


def execute_in_batches(cr, query, batch_size, max_batches):
    """ Run `query`, a statement handling at most `batch_size` rows (its rowcount), until a batch comes short or
    `max_batches` ran; outside tests each batch is committed, so that it is kept even if a later one fails or the
    worker is killed. Returns how many rows were handled. """
    auto_commit = not modules.module.current_test
    handled = 0
    for _batch in range(max_batches):
        cr.execute(query)
        handled += cr.rowcount
        last = cr.rowcount < batch_size
        if auto_commit:
            cr.commit()  # pylint: disable=invalid-commit
        if last:
            break
    return handled
