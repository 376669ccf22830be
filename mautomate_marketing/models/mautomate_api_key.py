import hashlib
import hmac
import secrets

from odoo import api, fields, models
from odoo.exceptions import UserError

TOKEN_PREFIX = 'mak'


class MautomateApiKey(models.Model):
    """ A token for the event API; only its hash is stored, the token is shown once. """
    _name = 'mautomate.api.key'
    _inherit = ['mail.thread']
    _description = 'Marketing Automation API Key'
    _order = 'create_date DESC, id DESC'

    name = fields.Char(required=True, tracking=True, help="Who or what uses this key, e.g. 'Webshop' or 'Support desk'.")
    active = fields.Boolean(default=True, tracking=True, help="Archiving a key revokes it: requests with it get 403.")
    key_prefix = fields.Char(readonly=True, index=True, copy=False,
                             help="The start of the token, to recognise it; the rest is never stored.")
    key_hash = fields.Char(readonly=True, copy=False, groups='base.group_system')
    has_token = fields.Boolean(compute='_compute_has_token')
    # Read from the event log, so that parallel requests with one key never write its row.
    last_used_at = fields.Datetime('Last Used', compute='_compute_usage',
                                   help="When the latest event sent with this key that is still in the log was received.")
    event_count = fields.Integer('Events Received', compute='_compute_usage',
                                 help="Events sent with this key that are still in the log.")
    company_id = fields.Many2one('res.company', index=True, default=lambda self: self.env.company, tracking=True,
                                 help="The company of the events sent with this key. Empty: shared by all companies.")

    _sql_constraints = [
        ('key_prefix_unique', 'unique(key_prefix)', 'Two API keys cannot share a prefix.'),
    ]

    @staticmethod
    def _hash_token(token):
        # Tokens carry 256 random bits, so a plain SHA-256 cannot be brute-forced.
        return hashlib.sha256(token.encode()).hexdigest()

    @api.depends('key_hash')
    def _compute_has_token(self):
        for key in self:
            key.has_token = bool(key.sudo().key_hash)

    def _compute_usage(self):
        usage = {
            key.id: (count, last_used_at)
            for key, count, last_used_at in self.env['mautomate.event'].sudo()._read_group(
                [('api_key_id', 'in', self._origin.ids)], ['api_key_id'], ['__count', 'create_date:max'])
        }
        for key in self:
            key.event_count, key.last_used_at = usage.get(key._origin.id, (0, False))

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
            raise UserError(self.env._("A revoked key cannot get a new token: create a new key."))
        token = f'{TOKEN_PREFIX}_{self.key_prefix}_{secrets.token_urlsafe(32)}'
        self.sudo().key_hash = self._hash_token(token)
        self._message_log(body=self.env._("New token issued: the previous token no longer works."))
        return {
            'type': 'ir.actions.act_window',
            'name': self.env._("Your API token"),
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

    def _ingest_events(self, vals_list):
        """ Store validated API events sent with this key; the key's row is only read. """
        self.ensure_one()
        for vals in vals_list:
            vals['api_key_id'] = self.id
        return self.env['mautomate.event']._ingest_api_events(vals_list)
