from odoo.tests import tagged

from .common import MautomateHttpCase


@tagged('post_install', '-at_install')
class TestFormTour(MautomateHttpCase):

    def test_visitor_fills_the_ebook_form_twice_and_sees_the_popup_once(self):
        ebook = self.env.ref('mautomate_marketing.mautomate_form_demo_ebook')
        ebook.min_fill_seconds = 0  # the tour types faster than people
        # A page with the Marketing Form block, as the website editor saves it once the e-book form is picked.
        block = str(self.env['ir.qweb']._render('mautomate_marketing.s_mautomate_form')).replace(
            'data-form-slug=""', 'data-form-slug="ebook"')
        view = self.env['ir.ui.view'].create({
            'name': 'Tour e-book page', 'type': 'qweb', 'key': 'mautomate_marketing.tour_ebook_page',
            'arch': f'<t t-name="mautomate_marketing.tour_ebook_page"><t t-call="website.layout">'
                    f'<div id="wrap">{block}</div></t></t>',
        })
        self.env['website.page'].create({'view_id': view.id, 'url': '/mautomate-tour-ebook', 'is_published': True,
                                         'website_id': self.env.ref('website.default_website').id})

        self.start_tour('/', 'mautomate_form_visitor')

        contact = self.env['res.partner'].search([('email_normalized', '=', 'tour.visitor@example.com')])
        self.assertRecordValues(contact, [{'name': 'Tove Tour', 'company_name': 'Tour AB', 'function': 'Buyer',
                                           'city': 'Malmö', 'email': 'tour.visitor@example.com'}])
        timeline = self.events([('partner_id', '=', contact.id)]).sorted('id')
        submits = timeline.filtered(lambda event: event.event_type == 'form_submit')
        self.assertEqual([submit.payload['answers'] for submit in submits], [
            {'email': 'tour.visitor@example.com', 'name': 'Tove Tour', 'company_name': 'Tour AB'},
            {'email': 'tour.visitor@example.com', 'function': 'Buyer', 'city': 'Malmö'},
        ], "six answers in two submits of three")
        self.assertTrue(submits[1].url.endswith('/mautomate-tour-ebook'), "the second submit came from the block's page")
        views = timeline.filtered(lambda event: event.event_type == 'page_view' and event.id < submits[0].id)
        self.assertEqual([view.url.split('/', 3)[-1] for view in views], ['', 'contactus', 'mautomate/form/ebook'],
                         "the pages browsed before the first submit are on the contact's timeline")
        popup = self.env.ref('mautomate_marketing.mautomate_popup_demo_ebook')
        self.assertEqual(timeline.filtered(lambda event: event.event_type == 'popup_view').mapped('res_id'), [popup.id],
                         "the pop-up shown once is on the contact's timeline")
        self.assertEqual(len(timeline.filtered(lambda event: event.event_type == 'form_view')), 3,
                         "the form shown in the pop-up, on its page and in the block")
        lead = self.env['crm.lead'].search([('partner_id', '=', contact.id)])
        self.assertEqual(len(lead), 1)
        self.assertEqual(submits.lead_id, lead, "the lead's timeline shows both submits")
