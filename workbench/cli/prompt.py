"""`workbench prompt`: prompt presets and saved versions from the command line.

    workbench prompt list                            presets and saved versions
    workbench prompt show REF [--render TASK]        a prompt as YAML, or rendered for a task
    workbench prompt diff REF REF                    a unified diff of two prompts
    workbench prompt export REF [--out FILE]         write a prompt as YAML
    workbench prompt import FILE [--name N]          validate a YAML file and save it as a version
    workbench prompt validate REF [--model SPEC]     list a prompt's problems (exit 1 when there are some)

REF is anything workbench.prompt_lab.resolve_prompt_ref reads: a preset name, a .yaml file, a saved
name or version id, or the Prompt lab's preset:NAME / saved:ID.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..errors import WorkbenchError

__all__ = ["add_prompt_parser", "cmd_prompt"]

REF_HELP = "a preset, a saved name or version id, or a .yaml file"


def add_prompt_parser(sub: Any) -> None:
    """Add the ``prompt`` sub-command to ``sub`` (the parser's add_subparsers() object)."""
    pr = sub.add_parser("prompt", help="prompt presets and saved versions: list, show, diff, export, import, validate",
                        formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    prs = pr.add_subparsers(dest="prompt_command", required=True, metavar="ACTION")
    prs.add_parser("list", help="presets and saved versions")
    show = prs.add_parser("show", help="print a prompt as YAML (or rendered for a task)")
    show.add_argument("ref", help=REF_HELP)
    show.add_argument("--render", metavar="TASK", default=None, help="print the prompt as the model sees it")
    diff = prs.add_parser("diff", help="a unified diff of two prompts")
    diff.add_argument("a", help=REF_HELP)
    diff.add_argument("b", help=REF_HELP)
    export = prs.add_parser("export", help="write a prompt as YAML")
    export.add_argument("ref", help=REF_HELP)
    export.add_argument("--out", default=None, help="file (default: print)")
    imp = prs.add_parser("import", help="validate a YAML file and save it as a version")
    imp.add_argument("file")
    imp.add_argument("--name", default=None)
    imp.add_argument("--note", default="")
    val = prs.add_parser("validate", help="list a prompt's problems (exit 1 when there are some)")
    val.add_argument("ref", help=REF_HELP)
    val.add_argument("--model", default=None, help="also check the prompt fits this model's context")


def cmd_prompt(args: Any) -> int:
    import difflib
    from pathlib import Path

    from ..prompt_lab import (
        list_versions,
        prompt_from_yaml,
        resolve_prompt_ref,
        save_version,
        validate_prompt,
    )
    from ..prompts import list_presets, load_prompt
    from ..store.runs import Store
    from ..tools.core import default_tools

    store = Store(args.store)
    action = args.prompt_command
    if action == "list":
        for name in list_presets():
            p = load_prompt(name)
            print(f"preset  {name:14s} {p.hash}  {p.mode:6s} {len(p.examples)} examples  {p.description}")
        for v in list_versions(store):
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created_at))
            print(f"saved   {v.name:14s} {v.hash}  {v.prompt.mode:6s} id {v.id} · {when} · {v.note}")
        return 0
    if action in ("show", "export"):
        prompt = resolve_prompt_ref(store, args.ref)[0]
        if action == "show" and args.render:
            style = "numbered" if prompt.style == "numbered" else "plain"
            system, user = prompt.render(args.render, default_tools().describe(style, prompt.tool_descriptions))
            print("".join(s.text for s in system) + "\n\n" + "".join(s.text for s in user))
            return 0
        text = prompt.to_yaml()
        if action == "export" and args.out:
            Path(args.out).write_text(text, encoding="utf-8")
            print(f"wrote {args.out}")
        else:
            print(text, end="")
        return 0
    if action == "diff":
        a, b = resolve_prompt_ref(store, args.a)[0], resolve_prompt_ref(store, args.b)[0]
        lines = difflib.unified_diff(a.to_yaml().splitlines(), b.to_yaml().splitlines(), f"{args.a} ({a.hash})",
                                     f"{args.b} ({b.hash})", lineterm="")
        out = "\n".join(lines)
        print(out if out else f"{args.a} and {args.b} are the same prompt ({a.hash}).")
        return 0
    if action == "import":
        path = Path(args.file)
        if not path.is_file():
            raise WorkbenchError(f"No file {path}.")
        prompt = prompt_from_yaml(path.read_text(encoding="utf-8"), source=str(path))
        v = save_version(store, prompt, args.name, note=args.note)
        print(f"saved {v.name} as version {v.id} ({v.hash})")
        return 0
    prompt = resolve_prompt_ref(store, args.ref)[0]  # validate
    model = None
    if args.model:
        from ..models import load_model

        model = load_model(args.model)
    problems = validate_prompt(prompt, model=model)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s) in {args.ref} ({prompt.hash})")
    return 1 if problems else 0
