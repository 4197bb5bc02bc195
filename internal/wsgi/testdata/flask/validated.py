"""flaskapp wrapped in wsgiref's PEP 3333 validator, warnings as errors."""
import warnings
from wsgiref.validate import WSGIWarning, validator

from flaskapp import app as flask_app

warnings.simplefilter("error", WSGIWarning)
app = validator(flask_app)
