"""The text a fix writes, and whether it may replace the code there: ``code_for_node`` writes a node as if at
module level (a line continued inside brackets would lose the block's indentation), and a replacement built
from an expression's parts drops the comments written inside it."""
from __future__ import annotations

import libcst as cst
from libcst._nodes.internal import CodegenState


def fix_text(module: cst.Module, node: cst.CSTNode, path: list[cst.CSTNode] | None) -> str:
    """``node``'s code as it reads at the end of ``path`` (the nodes from the module down to the site; None:
    as ``code_for_node`` writes it)."""
    if path is None:
        return module.code_for_node(node)
    indent = [block.indent if block.indent is not None else module.default_indent
              for block in path if isinstance(block, cst.IndentedBlock)]
    state = CodegenState(default_indent=module.default_indent, default_newline=module.default_newline)
    state.indent_tokens.extend(indent)
    node._codegen(state)
    return "".join(state.tokens)


def keeps_comments(node: cst.CSTNode, text: str, source: str | None = None) -> bool:
    """The replacement ``text`` parses as an expression (when ``node`` is one) and keeps every comment
    written inside ``node`` (``source``: its text in the file, when known, to skip the search)."""
    if source is not None and "#" not in source:
        before: list[str] = []
    else:
        before = comments(node)
    if not before and (source is not None or not isinstance(node, cst.BaseExpression)):
        return True  # nothing to lose (the replacement is built from the expression's own parts)
    if not isinstance(node, cst.BaseExpression):
        return not before
    try:
        after = comments(cst.parse_expression(text))
    except Exception:  # noqa: BLE001 - libcst raises ParserSyntaxError and, on odd input, others
        return False
    remaining = list(after)
    for comment in before:
        if comment not in remaining:
            return False
        remaining.remove(comment)
    return True


def comments(node: cst.CSTNode) -> list[str]:
    found: list[str] = []

    class _Comments(cst.CSTVisitor):
        def visit_Comment(self, comment: cst.Comment) -> None:
            found.append(comment.value)

    node.visit(_Comments())
    return found
