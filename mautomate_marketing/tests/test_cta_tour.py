from odoo.tests import tagged

from .common import MautomateHttpCase
from .test_cta import journey_cta


@tagged('post_install', '-at_install')
class TestCtaTour(MautomateHttpCase):

    def test_smart_cta_changes_after_the_download(self):
        cta = journey_cta(self.env)
        cta.line_ids[-1].url = '/contactus'
        website = self.env['website'].get_current_website()
        view = self.env['ir.ui.view'].create({
            'name': 'Smart CTA test', 'type': 'qweb', 'key': 'mautomate_marketing.smart_cta_test',
            'arch': f"""<t t-name="mautomate_marketing.smart_cta_test"><t t-call="website.layout"><div id="wrap">
                <section class="s_mautomate_cta pt48 pb48" data-snippet="s_mautomate_cta" data-cta-id="{cta.id}">
                    <div class="container text-center">
                        <a class="btn btn-primary btn-lg o_mautomate_cta_link" href="/contactus">Contact us</a>
                    </div>
                </section></div></t></t>""",
        })
        self.env['website.page'].create({'url': '/smart-cta-test', 'view_id': view.id, 'is_published': True,
                                         'website_id': website.id})
        self.start_tour('/smart-cta-test', 'mautomate_smart_cta_ebook')
        browsers = set(self.events([('event_type', '=', 'page_view'), ('url', 'like', '/smart-cta-test')]).mapped('anonymous_id'))
        self.assertEqual(len(browsers), 1, "the page gave the browser its cookie")
        browser = browsers.pop()
        self.assertTrue(browser)
        self.assertRecordValues(self.events([('event_type', 'in', ('cta_view', 'cta_click'))]).sorted('id'), [
            {'event_type': 'cta_view', 'anonymous_id': browser, 'name': 'Free e-book', 'res_id': cta.id},
            {'event_type': 'cta_click', 'anonymous_id': browser, 'name': 'Free e-book', 'res_id': cta.id},
        ])
        # The e-book is downloaded (its delivery logs the download for the browser).
        self.env['mautomate.event']._ingest([{'event_type': 'download', 'name': 'Our e-book.pdf', 'anonymous_id': browser}])
        self.start_tour('/smart-cta-test', 'mautomate_smart_cta_webinar', cookies={'mautomate_vid': browser})
        self.assertEqual(self.events([('event_type', '=', 'cta_view')]).sorted('id')[-1].name, 'Join the webinar')
