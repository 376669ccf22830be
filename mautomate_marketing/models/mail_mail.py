import re

import werkzeug.urls

from odoo import models, tools

# A link mass_mailing made for one mail: its short link, then its trace.
TRACE_LINK = re.compile(r'^/r/[^/?#]+/m/(\d+)$')


class MailMail(models.Model):
    _inherit = 'mail.mail'

    def _prepare_outgoing_body(self):
        """ mass_mailing ends each short link with the mail's trace (/r/<code>/m/<trace id>): add its signature,
        which lets a click on it identify the browser (a trace id alone is guessable). """
        body = super()._prepare_outgoing_body()
        if not body or not self.mailing_id or not self.mailing_trace_ids:
            return body
        trace = self.mailing_trace_ids[0]
        Wrapper = body.__class__
        for href, url, *_rest in set(re.findall(tools.mail.URL_REGEX, body)):
            parsed = werkzeug.urls.url_parse(url, scheme='http')
            match = TRACE_LINK.match(parsed.path)
            if parsed.scheme.startswith('http') and match and int(match[1]) == trace.id and not parsed.query:
                signed = f'{url}?{werkzeug.urls.url_encode({"sig": trace._mautomate_link_signature()})}'
                body = body.replace(Wrapper(href), Wrapper(href.replace(url, signed)))
        return body
