"""``localml-kit envs list / create / remove``: Python environments for other providers."""

from __future__ import annotations

import argparse

NAME = "envs"


def add_parser(sub: argparse._SubParsersAction) -> None:
    env = sub.add_parser(NAME, help="Python environments for providers that replace onnxruntime")
    env_sub = env.add_subparsers(dest="envs_command", required=True, metavar="ACTION")
    e_list = env_sub.add_parser("list", help="list recipes and created environments")
    e_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e_create = env_sub.add_parser("create", help="create an environment (once), e.g. openvino")
    e_create.add_argument("name", metavar="NAME")
    e_create.add_argument("--force", action="store_true", help="create it again")
    e_remove = env_sub.add_parser("remove", help="delete an environment")
    e_remove.add_argument("name", metavar="NAME")


def run(args: argparse.Namespace) -> int:
    from localml_kit import envs

    if args.envs_command == "list":
        table = envs.list()
        if args.json:
            print(table.to_json(orient="records", indent=2))
        else:
            print(
                table[["name", "ready", "providers", "onnxruntime", "python"]].to_string(
                    index=False
                )
            )
        return 0
    if args.envs_command == "remove":
        print(f"{args.name}: {'removed' if envs.remove(args.name) else 'not there'}")
        return 0
    recipe = envs.RECIPES.get(args.name)
    ready = [e for e in envs.list().to_dict("records") if e["name"] == args.name and e["ready"]]
    if (
        args.force
        or not ready
        or (recipe and ready[0]["requirements"] != " ".join(recipe.requirements))
    ):
        print(
            f"creating provider environment {args.name!r} (pip output is kept quiet)...", flush=True
        )
    env = envs.create(args.name, force=args.force)
    print(f"{env.name}: {env.python}")
    print(f"  onnxruntime {env.onnxruntime}; providers: {', '.join(env.providers)}")
    return 0
