from odoo import api, models
from odoo.tools import SQL


class MautomateLock(models.AbstractModel):
    """ Locks that serialise the transactions working on one thing (an e-mail's contact, a browser's visitor).

    Each key's bucket row is written: a transaction that waited for another one's row, or whose snapshot
    predates another one's write (it began while that one held the row), fails with a serialization
    failure, which Odoo retries with a fresh snapshot in which the other's work is seen. An advisory lock
    could not tell the second case, and the late transaction would not see that work. The statement logs
    no error: a restart is the expected outcome. Rows are hash buckets (at most 65,536), in an UNLOGGED
    table, as locks need no crash safety.
    """
    _name = 'mautomate.lock'
    _description = 'Marketing Lock'

    def init(self):
        self.env.cr.execute("""
            CREATE UNLOGGED TABLE IF NOT EXISTS mautomate_lock (
                bucket int4 PRIMARY KEY,
                locked_at timestamp NOT NULL
            )
        """)

    @api.model
    def _acquire(self, keys):
        """ Lock these keys (strings naming what is worked on) until the transaction ends. """
        self.env.cr.execute(SQL("""
            INSERT INTO mautomate_lock (bucket, locked_at)
            SELECT DISTINCT hashtext(key) & 65535, now() at time zone 'UTC'
              FROM unnest(%s::text[]) key
             ORDER BY 1
                ON CONFLICT (bucket) DO UPDATE SET locked_at = EXCLUDED.locked_at
        """, [f'mautomate_marketing.{key}' for key in keys]), log_exceptions=False)
