from . import mautomate_api_key_token
from . import mautomate_flow_enroll
from . import mautomate_flow_test
from . import mautomate_flow_test_line
