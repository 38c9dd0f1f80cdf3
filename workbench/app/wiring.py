"""What every tab's wiring shares: errors shown to the user, a table row picked by a click, menus that
refresh when opened, and handler parameters named for gradio_client.

    @guard
    def open_run(ctx, run_id): ...                      # any error -> gr.Error(describe_error(err))
    table.select(pick_row("id"), [table], [run_id])      # a click on a row -> that row's id
    refresh_models(ctx, model_a, model_b)                # finished fine-tunes appear when a menu opens
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Any, Callable, Iterator, TypeVar

import gradio as gr  # this module is imported only by the tabs, never by `import workbench`

from .context import AppContext, describe_error

__all__ = ["guard", "shown_errors", "pick_row", "refresh_choices", "refresh_models", "api_params"]

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def shown_errors(prefix: str = "") -> Iterator[None]:
    """Inside it, any exception becomes a gr.Error with the workbench's message (``prefix`` before it), chained
    to its cause; a gr.Error passes as it is. The app shows the message and keeps serving."""
    try:
        yield
    except gr.Error:
        raise
    except Exception as err:
        raise gr.Error(f"{prefix}{describe_error(err)}") from err


def guard(fn: F) -> F:
    """``fn`` with its errors shown to the user (see :func:`shown_errors`); generators stay generators, and the
    signature stays ``fn``'s, so gradio still injects gr.Request / gr.Progress and names the API's parameters."""
    if inspect.isgeneratorfunction(fn):  # gradio streams only what inspect calls a generator function
        @functools.wraps(fn)
        def streamed(*args: Any, **kwargs: Any) -> Any:
            with shown_errors():
                yield from fn(*args, **kwargs)
        return streamed  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with shown_errors():
            return fn(*args, **kwargs)
    return wrapped  # type: ignore[return-value]


def pick_row(column: str) -> Callable[..., str]:
    """A Dataframe ``.select`` handler: the clicked row's ``column`` as text ("" when there is none).

    >>> table.select(pick_row("id"), [table], [run_id], api_name=False)   # doctest: +SKIP
    """
    def picked(table: Any, evt: gr.SelectData) -> str:
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return str(table.iloc[row][column]) if table is not None and len(table) > row else ""
    return picked


def refresh_choices(choices: Callable[[], Any], *dropdowns: Any) -> None:
    """Each dropdown re-reads its ``choices()`` when it is opened (a corpus uploaded in another tab, say)."""
    for dropdown in dropdowns:
        dropdown.focus(lambda: gr.update(choices=choices()), None, dropdown, api_name=False)


def refresh_models(ctx: AppContext, *dropdowns: Any) -> None:
    """Model menus that list finished fine-tunes as soon as they are opened again."""
    refresh_choices(ctx.models.choices, *dropdowns)


def api_params(*names: str, request: bool = False, progress: bool = False) -> Callable[[F], F]:
    """Name the parameters of a ``*args`` handler, so gradio_client shows and accepts them by keyword
    (gradio reads the signature; without names it says param_0, param_1, ...). Gradio still passes them in order.
    ``request`` / ``progress``: gradio also passes the session's ``gr.Request`` and a ``gr.Progress``
    after the inputs (in that order), as it does for a handler that declares them.

    >>> @api_params("prompt", "name", "mode")       # doctest: +SKIP
    ... def handler(*values): ...
    """
    def named(fn: F) -> F:
        params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
        if request:
            params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                            annotation=gr.Request))
        if progress:
            params.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
        fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        return fn
    return named
