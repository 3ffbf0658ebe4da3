"""Errors of the feature DSL. Every error says what was wrong, where, and what would be right."""
from __future__ import annotations

from palette.errors import PaletteError


class DSLError(PaletteError):
    """A problem with a DSL expression.

    ``line`` and ``column`` (1-based) point into ``source`` when the problem has a
    place in the text; ``str(err)`` then shows the source line with a caret.
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 source: str | None = None):
        self.message = message
        self.line = line
        self.column = column
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        if self.line is None or self.source is None:
            return self.message
        lines = self.source.splitlines() or [""]
        text = lines[self.line - 1] if 0 < self.line <= len(lines) else ""
        caret = " " * max((self.column or 1) - 1, 0) + "^"
        return f"{self.message} (line {self.line}, column {self.column})\n  {text}\n  {caret}"

    def with_source(self, source: str, line: int | None = None, column: int | None = None) -> "DSLError":
        """The same error, shown against ``source`` (its own position wins over the given one)."""
        if self.source is not None:
            return self
        return type(self)(self.message, line=self.line or line, column=self.column or column, source=source)


class DSLSyntaxError(DSLError):
    """The text is not a DSL expression."""


class DSLTypeError(DSLError):
    """Unknown function, wrong arity or wrong argument types."""


class DSLLimitError(DSLError):
    """The expression is too long or nested too deeply."""


class DSLInputError(DSLError):
    """A row or DataFrame does not provide what an expression reads (missing field, wrong type)."""


class DSLUnsupportedError(DSLError):
    """The expression is valid but cannot run here (e.g. a learned function in a DSLTransformer)."""
