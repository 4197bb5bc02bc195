"""The project's WSGI app wrapped in wsgiref's PEP 3333 validator, warnings as errors."""
import warnings
from wsgiref.validate import WSGIWarning, validator

from mysite.wsgi import application as django_application

warnings.simplefilter("error", WSGIWarning)
application = validator(django_application)
