import threading
import uuid
from functools import partial
from unittest.mock import patch

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import DummyRLock, Registry
from odoo.service.model import retrying
from odoo.tests import common, tagged


@tagged('post_install', '-at_install')
class TestConcurrentIdentity(common.TransactionCase):
    """ Real concurrency: each thread is a request of its own, with its own database connection and
    transaction, retried by Odoo's `retrying` as the HTTP layer does; they start at one instant. """

    CLIENTS = 4

    def run_at_once(self, function):
        barrier = threading.Barrier(self.CLIENTS)
        results, errors = [], []

        def client():
            with self.registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                barrier.wait()
                try:
                    results.append(retrying(partial(function, env), env))
                except Exception as error:
                    errors.append(error)

        threads = [threading.Thread(target=client) for _ in range(self.CLIENTS)]
        # The test runner holds the registry lock while tests run; lift it as Odoo's HttpCase does.
        with patch.object(Registry, '_lock', DummyRLock()):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        self.assertFalse(errors)
        return results

    def committed_contacts(self, email):
        with self.registry.cursor() as cr:
            cr.execute("SELECT id FROM res_partner WHERE email_normalized = %s", [email])
            return [row[0] for row in cr.fetchall()]

    def test_double_submit_creates_one_contact(self):
        for _trial in range(3):
            email = f'double.click.{uuid.uuid4().hex[:8]}@example.com'
            self.addCleanup(self.delete_contacts, email)
            results = self.run_at_once(partial(self.find_or_create, email))
            created = self.committed_contacts(email)
            self.assertEqual(len(created), 1, "one contact per normalised e-mail")
            self.assertEqual(results, created * self.CLIENTS, "every request got that contact")

    @staticmethod
    def find_or_create(email, env):
        return env['res.partner']._mautomate_find_or_create_by_email({email.upper(): 'Double Click'})[email].id

    def delete_contacts(self, email):
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM res_partner WHERE email_normalized = %s", [email])
