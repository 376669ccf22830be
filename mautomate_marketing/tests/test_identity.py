from odoo.tests import tagged

from .common import MautomateCase


@tagged('post_install', '-at_install')
class TestIdentity(MautomateCase):

    def test_attach_anonymous_history_by_visitor_and_browser(self):
        visitor = self.env['website.visitor'].create({'access_token': 'a' * 32})
        seen_with_visitor, other_device = self.new_browser_id(), self.new_browser_id()
        by_visitor = self.ingest(visitor_id=visitor.id)
        by_cookie_seen_with_visitor = self.ingest(anonymous_id=seen_with_visitor, visitor_id=visitor.id)
        same_cookie_other_session = self.ingest(anonymous_id=seen_with_visitor)
        by_given_cookie = self.ingest(anonymous_id=other_device)
        stranger = self.ingest(anonymous_id=self.new_browser_id())
        someone_elses = self.ingest(visitor_id=visitor.id, partner_id=self.env['res.partner'].create({'name': 'B'}).id)

        attached = self.Event._attach_anonymous_history(self.partner, visitors=visitor, anonymous_ids=[other_device, None])

        self.assertEqual(attached, 4)
        self.assertEqual((by_visitor | by_cookie_seen_with_visitor | same_cookie_other_session | by_given_cookie).partner_id, self.partner)
        self.assertFalse(stranger.partner_id)
        self.assertNotEqual(someone_elses.partner_id, self.partner)

    def test_history_of_untrackable_contact_is_erased(self):
        self.partner.mautomate_no_tracking = True
        browser_id = self.new_browser_id()
        event = self.ingest(anonymous_id=browser_id)
        self.assertEqual(self.Event._attach_anonymous_history(self.partner, anonymous_ids=[browser_id]), 1)
        self.assertFalse(event.exists())

    def test_attached_page_views_are_queued_only_when_a_rule_scores_them(self):
        self.env['mautomate.score.rule'].search([('rule_type', '=', 'behaviour')]).active = False
        Queue = self.env['mautomate.score.queue']
        browser_id = self.new_browser_id()
        views = self.ingest(anonymous_id=browser_id) | self.ingest(anonymous_id=browser_id)
        self.assertEqual(self.Event._attach_anonymous_history(self.partner, anonymous_ids=[browser_id]), 2)
        self.assertFalse(Queue.search([('event_id', 'in', views.ids)]), "no rule scores a page view, and none moves a stage")
        other_browser = self.new_browser_id()
        submit = self.ingest(anonymous_id=other_browser, event_type='form_submit')
        view = self.ingest(anonymous_id=other_browser)
        Queue.search([]).unlink()
        self.assertEqual(self.Event._attach_anonymous_history(self.partner, anonymous_ids=[other_browser]), 2)
        self.assertEqual(Queue.search([('event_id', 'in', (submit | view).ids)]).event_id, submit | view,
                         "a form submit may move the stage: the history is refreshed")

    def test_nothing_to_attach(self):
        self.assertEqual(self.Event._attach_anonymous_history(self.partner), 0)

    def test_find_or_create_by_email(self):
        existing = self.env['res.partner'].create({'name': 'First', 'email': 'dup@example.com'})
        self.env['res.partner'].create({'name': 'Second', 'email': 'DUP@example.com'})
        partners = self.env['res.partner']._mautomate_find_or_create_by_email({
            '"Dup" <Dup@Example.com>': None, 'new@example.com': 'New Person', 'not an e-mail': 'X'})
        self.assertEqual(set(partners), {'dup@example.com', 'new@example.com'})
        self.assertEqual(partners['dup@example.com'], existing)
        self.assertRecordValues(partners['new@example.com'], [{'name': 'New Person', 'email': 'new@example.com'}])
