"""The line catalogue (every line of the three statements, declared once), as the core and everything above
it import it. It is declared in schemas/catalogue.py: the wire models validate line codes against it, and they
sit below the core (README, "How it is built")."""

from schemas.catalogue import *  # noqa: F403
from schemas.catalogue import __all__ as __all__
