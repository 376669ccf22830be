from ast import literal_eval

from odoo.osv import expression


def parse_domain(text):
    """ A domain stored as text: a list of conditions, normalised; raises ValueError or SyntaxError. """
    domain = literal_eval(text or '[]')
    if not isinstance(domain, (list, tuple)):
        raise ValueError("a domain is a list of conditions")
    return expression.normalize_domain(list(domain))
