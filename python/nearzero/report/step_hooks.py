"""Forward hooks that live for one training step. The recorder adds its hooks at the start of
every step and removes them at its end (so that code compiled between steps never sees them);
`register_forward_hook` builds a handle with weak references each time, which on a small model
is a visible part of the step, so the hooks go straight into the module's hook dictionary.
"""

from __future__ import annotations

import itertools

from torch import nn

# Negative keys: torch numbers its own hook handles from 0 up, so no key is ever both.
_keys = itertools.count(-1, -1)


class StepHooks:
    """Forward hooks added with `add` (called as hook(module, inputs, output), like those of
    `register_forward_hook`), all removed by `remove`."""

    def __init__(self):
        self._added = []  # (hook dictionary, key), or a handle where there is no dictionary

    def add(self, module: nn.Module, hook) -> None:
        hooks = module.__dict__.get("_forward_hooks")
        if not isinstance(hooks, dict):  # not the nn.Module this was written against
            self._added.append(module.register_forward_hook(hook))
            return
        key = next(_keys)
        hooks[key] = hook
        self._added.append((hooks, key))

    def add_all(self, pairs) -> None:
        """`add` for every (module, hook) of `pairs`."""
        added = self._added
        for module, hook in pairs:
            hooks = module.__dict__.get("_forward_hooks")
            if isinstance(hooks, dict):
                key = next(_keys)
                hooks[key] = hook
                added.append((hooks, key))
            else:
                self.add(module, hook)

    def remove(self) -> None:
        for added in self._added:
            if isinstance(added, tuple):
                added[0].pop(added[1], None)
            else:
                added.remove()
        self._added.clear()

    def __len__(self) -> int:
        return len(self._added)
