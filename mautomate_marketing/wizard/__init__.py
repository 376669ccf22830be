from . import mautomate_api_key_token
from . import mautomate_flow_enroll
