from . import api
from . import identify
from . import mass_mailing
from . import tracking
from . import website_form
from . import form
from . import consent
from . import popup
