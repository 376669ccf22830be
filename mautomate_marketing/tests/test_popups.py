import json
import re

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import MautomateHttpCase

EMBED_URL = '/mautomate/form/ebook/embed'
NO_TRACKING = {'X-Disable-Tracking': '1'}


@tagged('post_install', '-at_install')
class TestEmbeddedFormsAndPopups(MautomateHttpCase):

    def setUp(self):
        super().setUp()
        self.ebook = self.env.ref('mautomate_marketing.mautomate_form_demo_ebook')
        self.ebook.min_fill_seconds = 0
        self.popup = self.env.ref('mautomate_marketing.mautomate_popup_demo_ebook')

    def popups(self, path):
        response = self.url_open(f'/mautomate/popup?path={path}', headers=NO_TRACKING)
        self.assertEqual(response.status_code, 200)
        self.assertIn('private', response.headers['Cache-Control'], "per browser: no shared cache keeps it")
        return [popup['id'] for popup in json.loads(response.text)['popups']]

    def test_embedded_form_posts_in_place(self):
        response = self.url_open(EMBED_URL, headers=NO_TRACKING)
        self.assertEqual(response.status_code, 200)
        self.assertNotIn('id="wrapwrap"', response.text, "the form alone, without the page")
        self.assertEqual(re.findall(r'data-name="([a-z_]+)"', response.text), ['email', 'name', 'company_name', 'consent'])
        self.assertIn('data-embed-url="/mautomate/form/ebook/embed"', response.text)
        self.assertFalse(self.events([('event_type', '=', 'page_view')]), "fetching the form is no page view")
        data = {name: re.search(rf'name="{name}" value="([^"]*)"', response.text).group(1)
                for name in ('csrf_token', 'mautomate_token')}

        invalid = self.url_open(EMBED_URL, data={**data, 'email': 'not an e-mail', 'consent': '1'}, headers=NO_TRACKING)
        self.assertEqual(invalid.status_code, 400)
        self.assertNotIn('id="wrapwrap"', invalid.text)
        self.assertIn('invalid-feedback', invalid.text)
        self.assertIn('value="not an e-mail"', invalid.text, "what was typed comes back, next to its error")

        sent = self.url_open(EMBED_URL, data={**data, 'email': 'embed@example.com', 'name': 'Em Bed', 'consent': '1'},
                             headers={**NO_TRACKING, 'Referer': f'{self.base_url()}/contactus'})
        self.assertEqual(sent.status_code, 200)
        self.assertIn('o_mautomate_form_thanks', sent.text)
        self.assertIn('/mautomate/form/ebook/file/', sent.text)
        submit = self.events([('event_type', '=', 'form_submit')])
        self.assertEqual(submit.partner_id.email, 'embed@example.com')
        self.assertTrue(submit.url.endswith('/contactus'), "the page the form was on")

    def test_popup_for_page_and_browser(self):
        self.assertIn(self.popup.id, self.popups('/'))
        self.assertNotIn(self.popup.id, self.popups('/mautomate/form/ebook'), "not on the form's own page")
        self.popup.url_patterns = '/shop*\n/blog/*'
        self.assertEqual((self.popup.id in self.popups('/shop/chair'), self.popup.id in self.popups('/blog/news'),
                          self.popup.id in self.popups('/contactus')), (True, True, False))
        self.popup.url_patterns = False
        self.popup.active = False
        self.assertNotIn(self.popup.id, self.popups('/'))
        self.popup.active = True

        # This browser sends the form: the pop-up of that form is not offered to it any more.
        self.url_open('/')
        page = self.url_open(EMBED_URL, headers=NO_TRACKING).text
        data = {name: re.search(rf'name="{name}" value="([^"]*)"', page).group(1) for name in ('csrf_token', 'mautomate_token')}
        self.assertEqual(self.url_open(EMBED_URL, data={**data, 'email': 'popped@example.com', 'name': 'Pop',
                                                        'consent': '1'}).status_code, 200)
        self.assertNotIn(self.popup.id, self.popups('/'))
        self.opener.cookies.clear()
        self.assertIn(self.popup.id, self.popups('/'), "another browser still gets it")

    def test_popup_settings_checks(self):
        for values in ({'scroll_percent': 120}, {'delay_seconds': -1}, {'period_days': -1}):
            with self.assertRaises(ValidationError), self.env.cr.savepoint():
                self.popup.write(values)
