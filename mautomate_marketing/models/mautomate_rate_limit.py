import ipaddress

from odoo import api, models
from odoo.tools import SQL

# What one IP address may do per minute, by scope; ir.config_parameter mautomate_marketing.rate_limit_<scope>
# overrides it (0: no limit). 'track' counts beacon events (a beacon carries up to 100), the others requests:
# 50 events a second from one address is a flood, not an office behind one router.
DEFAULT_LIMITS = {
    'form': 10,
    'track': 3000,
    'cta_view': 600,
    'cta_click': 120,
    'form_view': 300,
    'popup_view': 300,
    'identify': 60,
}


def rate_limit_key(ip):
    """ The counter of an address: an IPv6 address counts with its /64 (what one subscriber is given), an
    IPv4-mapped one as its IPv4 address; what is not an address is counted as given. """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if address.version == 6:
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class MautomateRateLimit(models.AbstractModel):
    """ What each IP address does per minute, counted in PostgreSQL so that every worker sees it.

    Each database connection counts in a row of its own (its backend pid in the key): requests
    never wait for one another's row lock nor fail on a concurrent update, and the count is the
    sum of the rows of that address and minute (the committed ones, and this transaction's).
    The table is UNLOGGED: counters need no crash safety.
    """
    _name = 'mautomate.rate.limit'
    _description = 'Marketing Rate Limit'

    def init(self):
        self.env.cr.execute("""
            CREATE UNLOGGED TABLE IF NOT EXISTS mautomate_rate_limit (
                scope varchar NOT NULL,
                ip varchar NOT NULL,
                minute timestamp NOT NULL,
                backend int4 NOT NULL,
                hits int4 NOT NULL,
                PRIMARY KEY (scope, ip, minute, backend)
            )
        """)

    @api.model
    def _get_limit(self, scope):
        value = self.env['ir.config_parameter'].sudo().get_param(f'mautomate_marketing.rate_limit_{scope}')
        try:
            return int(value) if value not in (None, False, '') else DEFAULT_LIMITS[scope]
        except ValueError:
            return DEFAULT_LIMITS[scope]

    @api.model
    def _hit(self, scope, ip, count=1):
        """ Count `count` hits (requests, or a beacon's events) of this IP address; whether the minute's total
        is then over the limit of its scope. Refused hits count too: a client that keeps sending stays refused.
        One statement. """
        limit = self._get_limit(scope)
        if limit <= 0 or not ip:
            return False
        self.env.cr.execute(SQL("""
            WITH hit AS (
                INSERT INTO mautomate_rate_limit (scope, ip, minute, backend, hits)
                VALUES (%(scope)s, %(ip)s, date_trunc('minute', now() at time zone 'UTC'), pg_backend_pid(), %(count)s)
                ON CONFLICT (scope, ip, minute, backend) DO UPDATE SET hits = mautomate_rate_limit.hits + excluded.hits
                RETURNING hits)
            SELECT hit.hits + COALESCE((SELECT sum(other.hits) FROM mautomate_rate_limit other
                                         WHERE other.scope = %(scope)s AND other.ip = %(ip)s
                                           AND other.minute = date_trunc('minute', now() at time zone 'UTC')
                                           AND other.backend <> pg_backend_pid()), 0)
              FROM hit
        """, scope=scope, ip=rate_limit_key(ip), count=count))
        return self.env.cr.fetchone()[0] > limit

    @api.autovacuum
    def _gc_counters(self):
        self.env.cr.execute("DELETE FROM mautomate_rate_limit WHERE minute < (now() at time zone 'UTC') - interval '1 hour'")
