from . import mautomate_api_key_token
