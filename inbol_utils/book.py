"""Numbers into the book's prose: a thin layer over `myst_nb.glue`; notes where a source lacks them."""
from __future__ import annotations

import numbers

from myst_nb import glue


def glue_value(name: str, value) -> None:
    """Glue a number or string for `{glue:text}` in the prose, without displaying it here.

    numpy scalars are turned into Python numbers first: their repr ("np.float64(0.5)") is what
    glue stores, and myst-nb cannot format that with a spec such as `:.3f`.
    """
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real):
        value = float(value)
    glue(name, value, display=False)


NOT_KNOWN = "not known on this source"


def note_not_known(what: str, source: str) -> None:
    """Show, in place of a table or figure, that it needs ground truth this data source lacks
    (a real dataset does not say which queries lie beyond the model's intrinsic boundary)."""
    from IPython.display import Markdown, display

    display(Markdown(f"*{what}: {NOT_KNOWN} ({source}). A real dataset records no fact exposure, "
                     f"difficulty or intrinsic boundary; only what the models do is measured.*"))
