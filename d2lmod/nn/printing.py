"""print(model): PyTorch's layout, written line by line from explicit stacks so that any depth prints."""
from __future__ import annotations


def module_repr(root, generic_repr) -> str:
    """The text of root and its children; a child with its own __repr__ (not generic_repr) prints itself."""
    same = _print_ids(root)
    lines, on_path, stack = [], set(), [(0, '', root)]
    while stack:
        depth, label, module = stack.pop()
        pad = '  ' * depth
        if label is None:                    # the end of module's children: close its parenthesis
            on_path.discard(id(module))
            lines.append(pad + ')')
        elif module is None or id(module) in on_path:
            lines.append(pad + label + ('None' if module is None else f'<{type(module).__name__}: contains itself>'))
        elif module is not root and type(module).__repr__ is not generic_repr:
            lines.append(pad + label + repr(module).replace('\n', '\n' + pad))
        else:
            extra = module.extra_repr()
            extra = extra.split('\n') if extra else []
            if not module._modules and len(extra) <= 1:
                lines.append(f'{pad}{label}{type(module).__name__}({"".join(extra)})')
                continue
            lines.append(f'{pad}{label}{type(module).__name__}(')
            lines.extend(f'{pad}  {line}' for line in extra)
            on_path.add(id(module))
            stack.append((depth, None, module))
            children = [(f'({name}): ', child) for name, child in module._modules.items()]
            if getattr(module, '_repr_runs', False):
                children = _runs(list(module._modules.values()), same)
            stack.extend((depth + 1, text, child) for text, child in reversed(children))
    return '\n'.join(lines)


def _runs(children: list, same: dict) -> list:
    """ModuleList's labels, as PyTorch prints them: a run of children that print alike is '(0-2): 3 x ...'."""
    out, start = [], 0
    for i in range(1, len(children) + 1):
        if i == len(children) or same.get(id(children[i])) != same.get(id(children[start])) or \
                children[start] is None:
            out.append((f'({start}): ' if i - start == 1 else f'({start}-{i - 1}): {i - start} x ', children[start]))
            start = i
    return out


def _print_ids(root) -> dict:
    """id(module) -> a number that two modules share exactly when they print the same, children first.

    A module prints as its class name, its extra_repr and its children, so those (with the children's numbers)
    decide; one pass, children before parents, finds every run of identical layers without printing twice.
    """
    ids, table, on_path, stack = {}, {}, set(), [(root, False)]
    while stack:
        module, children_done = stack.pop()
        if children_done:
            on_path.discard(id(module))
            key = (type(module).__name__, module.extra_repr(), tuple(
                (name, None if child is None else ids.get(id(child), 'loop'))
                for name, child in module._modules.items()))
            ids[id(module)] = table.setdefault(key, len(table))
        elif id(module) not in ids and id(module) not in on_path:
            on_path.add(id(module))
            stack.append((module, True))
            stack.extend((child, False) for child in module._modules.values() if child is not None)
    return ids
