"""Kickoff forms: definitions (forms.models), the builder in the staff area, and the public
render/submit/embed blueprint."""
from forms import models  # noqa: F401  (the tables)
from forms import submissions  # noqa: F401  (its jobs and merge hook register on import)
from forms import demo  # noqa: F401  (the demo tenant's kickoff form)
from forms import submission_list  # noqa: F401  (its section of the contact page)


def init_app(app) -> None:
    """Register the forms blueprints (the composition root calls this)."""
    from forms import builder, public

    public.init_app(app)
    builder.init_app(app)
