from . import test_event_log
from . import test_identity
from . import test_mail_events
from . import test_privacy
from . import test_api
from . import test_beacon
from . import test_website_tracking
from . import test_tours
