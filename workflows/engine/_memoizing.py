"""``memoize`` on a node: look the key up before running, store the outputs after a success."""

from __future__ import annotations

from typing import Any

from workflows.engine._calls import Bound
from workflows.engine._model import StatusBook
from workflows.engine._retry import parse_duration
from workflows.engine.templating import substitute_obj

__all__ = ["Memoizing"]


class Memoizing:
    """Mixin of :class:`~workflows.engine._execute.Execution`: the memo cache lookups."""

    book: StatusBook
    ctx: Any

    def global_scope(self) -> dict[str, Any]:
        raise NotImplementedError

    def _memo_args(self, template: dict[str, Any], parameters: dict[str, str]) -> tuple[str, str, float | None]:
        memo = substitute_obj(
            template["memoize"], {**self.global_scope(), **{f"inputs.parameters.{k}": v for k, v in parameters.items()}}
        )
        cache = ((memo.get("cache") or {}).get("configMap") or {}).get("name", "default")
        max_age = parse_duration(memo["maxAge"]) if memo.get("maxAge") else None
        return cache, str(memo.get("key", "")), max_age

    def _memo_hit(self, bound: Bound) -> dict[str, Any] | None:
        cache, key, max_age = self._memo_args(bound.template, bound.parameters)
        outputs = self.ctx.memo.get(cache, key, max_age)
        if outputs is None:
            return None
        call = bound.call
        node = call.create_node(self.book, bound.node_type, bound.template.get("name"), extra=bound.node_extra())
        return self.book.finish(
            node, "Succeeded", outputs=outputs, memoizationStatus={"hit": True, "key": key, "cacheName": cache}
        )

    def _memo_save(self, template: dict[str, Any], parameters: dict[str, str], node: dict[str, Any]) -> None:
        cache, key, _ = self._memo_args(template, parameters)
        self.ctx.memo.put(cache, key, node.get("outputs") or {}, node["id"])
        self.book.update(node, memoizationStatus={"hit": False, "key": key, "cacheName": cache})
