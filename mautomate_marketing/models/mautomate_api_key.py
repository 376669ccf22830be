import hashlib
import hmac
import secrets

from odoo import _, api, fields, models
from odoo.exceptions import UserError

TOKEN_PREFIX = 'mak'


class MautomateApiKey(models.Model):
    """ A token for the event API; only its hash is stored, the token is shown once. """
    _name = 'mautomate.api.key'
    _description = 'Marketing Automation API Key'
    _order = 'create_date DESC, id DESC'

    name = fields.Char('Name', required=True, help="Who or what uses this key, e.g. 'Webshop' or 'Support desk'.")
    active = fields.Boolean('Active', default=True, help="Archiving a key revokes it: requests with it get 403.")
    key_prefix = fields.Char('Key Prefix', readonly=True, index=True, copy=False,
                             help="The start of the token, to recognise it; the rest is never stored.")
    key_hash = fields.Char('Key Hash', readonly=True, copy=False, groups='base.group_system')
    last_used_at = fields.Datetime('Last Used', readonly=True, copy=False)
    event_count = fields.Integer('Events Received', readonly=True, copy=False)

    _sql_constraints = [
        ('key_prefix_unique', 'unique(key_prefix)', 'Two API keys cannot share a prefix.'),
    ]

    @staticmethod
    def _hash_token(token):
        # Tokens carry 256 random bits, so a plain SHA-256 cannot be brute-forced.
        return hashlib.sha256(token.encode()).hexdigest()

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            vals.pop('key_hash', None)
            vals['key_prefix'] = secrets.token_hex(4)
        return super().create(vals_list)

    def action_generate_token(self):
        """ Issue a new secret for this key, replacing the old one, and show it once. """
        self.ensure_one()
        if not self.active:
            raise UserError(_("A revoked key cannot get a new token: create a new key."))
        token = f'{TOKEN_PREFIX}_{self.key_prefix}_{secrets.token_urlsafe(32)}'
        self.sudo().key_hash = self._hash_token(token)
        return {
            'type': 'ir.actions.act_window',
            'name': _("Your API token"),
            'res_model': 'mautomate.api.key.token',
            'view_mode': 'form',
            'target': 'new',
            'context': {'default_api_key_id': self.id, 'default_token': token},
        }

    def action_revoke(self):
        self.active = False

    @api.model
    def _authenticate(self, token):
        """ Return (key, status): status is 'ok', 'invalid' (unknown or malformed) or 'revoked'. """
        parts = token.split('_', 2) if token else []
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            return self.browse(), 'invalid'
        key = self.sudo().with_context(active_test=False).search([('key_prefix', '=', parts[1])], limit=1)
        if not key or not key.key_hash or not hmac.compare_digest(key.key_hash, self._hash_token(token)):
            return self.browse(), 'invalid'
        if not key.active:
            return key, 'revoked'
        return key, 'ok'

    def _register_use(self, event_count):
        self.env.cr.execute(
            "UPDATE mautomate_api_key SET last_used_at = now() at time zone 'UTC', event_count = COALESCE(event_count, 0) + %s WHERE id = %s",
            (event_count, self.id))
        self.invalidate_recordset(['last_used_at', 'event_count'])

