"""Kickoff forms: definitions (forms.models), the builder in the staff area, and the public
render/submit/embed blueprint."""
from forms import models  # noqa: F401  (the tables)


def init_app(app) -> None:
    """Register the forms blueprints (the composition root calls this)."""
    from forms import builder

    builder.init_app(app)
