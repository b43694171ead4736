"""``kuzet backup`` and ``kuzet restore``: the whole installation, while it runs, and back onto an empty one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from kuzet.cli.common import DataOpt, JsonOpt, console, err_console, fail, open_installation, print_json

PASSPHRASE_ENV = "KUZET_BACKUP_PASSPHRASE"
PassFileOpt = Annotated[Path | None, typer.Option(
    "--passphrase-file", help=f"File whose first line is the passphrase (else ${PASSPHRASE_ENV}, else [backup] "
                              "passphrase_file, else asked).")]


def register(app: typer.Typer) -> None:
    app.command()(backup)
    app.command()(restore)


def read_passphrase(file: Path | None, configured: Path | None = None, *, confirm: bool = False) -> str:
    """The passphrase from a file, the environment or the terminal; never echoed, never logged."""
    for source in (file, None if os.environ.get(PASSPHRASE_ENV) else configured):
        if source is not None:
            try:
                lines = source.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                fail(f"passphrase file {source}: {exc.strerror}")
            if not lines or not lines[0]:
                fail(f"passphrase file {source} is empty")
            return lines[0]
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    if not os.isatty(0):
        fail(f"no passphrase: give --passphrase-file or set {PASSPHRASE_ENV}")
    return typer.prompt("backup passphrase", hide_input=True, confirmation_prompt=confirm)


def _stepper(bar, task):  # noqa: ANN001, ANN202
    def step(name: str) -> None:
        bar.update(task, description=name, advance=1)

    return step


def backup(
    into: Annotated[Path | None, typer.Argument(help="Folder to write the backup into (default: [backup] dir).")]
    = None,
    recordings: Annotated[bool | None, typer.Option(
        "--recordings/--index-only", help="Also copy the recordings, event snapshots and exports (default: [backup] "
                                          "recordings; the index is always in the database).")] = None,
    keep: Annotated[int | None, typer.Option(help="Then keep only the newest N backups in the folder.")] = None,
    passphrase_file: PassFileOpt = None,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Back up the database (consistent, while the server runs), the keys and configuration sealed with a passphrase,
    the audit anchor and documents, with a manifest of SHA-256 sums."""
    from kuzet.cli.common import progress_bar
    from kuzet.services.backup import BackupError, make_backup, rotate

    inst = open_installation(data)
    folder = into or inst.settings.backup.dir
    if folder is None:
        fail("where to? give a folder, or set [backup] dir in the configuration")
    passphrase = read_passphrase(passphrase_file, inst.settings.backup.passphrase_file, confirm=True)
    media = inst.settings.backup.recordings if recordings is None else recordings
    try:
        with progress_bar() as bar:
            task = bar.add_task("backup", total=8 if media else 7)
            video = bar.add_task("recordings (bytes)", total=None, visible=False) if media else None

            def copied(done: int, total: int) -> None:
                bar.update(video, completed=done, total=total, visible=True)

            result = make_backup(inst, folder, passphrase, media=media, progress=_stepper(bar, task),
                                 media_progress=copied if media else None)
    except BackupError as exc:
        fail(str(exc))
    finally:
        inst.close()
    removed = rotate(folder, keep) if keep else []
    out = result.as_dict() | {"removed": [str(p) for p in removed]}
    if json_out:
        print_json(out)
        return
    console.print(f"[green]backup written[/]: {escape(str(result.path))} ({out['bytes']:,} bytes, schema "
                  f"{out['schema_revision']}, audit anchor #{out['audit_anchor_seq']})", highlight=False,
                  soft_wrap=True)
    for part in out["parts"]:
        console.print(f"  {part['name']:<13} {part['file']:<16} {part['bytes']:>14,}  {part['sha256'][:16]}…"
                      + ("  sealed" if part["sealed"] else ""), highlight=False)
    for path in removed:
        console.print(f"  removed old backup {escape(str(path))}", highlight=False)
    err_console.print("Keep the passphrase apart from the backups: without it the keys cannot be restored, and "
                      "without the keys no safe-yard passport can be read.", highlight=False, soft_wrap=True)


def restore(
    backup_dir: Annotated[Path, typer.Argument(metavar="BACKUP", help="A kuzet-backup-… folder.")],
    database_url: Annotated[str | None, typer.Option(
        envvar="KUZET_DATABASE_URL", help="Empty database to restore into (default: the restored configuration's, "
                                          "else SQLite in the data directory).")] = None,
    passphrase_file: PassFileOpt = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Only check the backup (every SHA-256, the passphrase, the sealed manifest); write nothing.")]
    = False,
    data: DataOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Restore a backup onto an EMPTY data directory and database: every part is checked (SHA-256, passphrase,
    sealed manifest) before anything is written; then the schema is brought to this version's head."""
    from kuzet.cli.common import progress_bar
    from kuzet.config import resolve_data_dir
    from kuzet.services.backup import BackupError, check_backup, read_manifest, restore_backup

    if not backup_dir.is_dir():
        fail(f"{backup_dir}: no such folder")
    try:
        parts = len(read_manifest(backup_dir)["parts"])
    except BackupError as exc:
        fail(str(exc))
    passphrase = read_passphrase(passphrase_file)
    if check:
        try:
            with progress_bar() as bar:
                task = bar.add_task("checking", total=parts + 1)
                manifest, _sealer = check_backup(backup_dir, passphrase, _stepper(bar, task))
        except BackupError as exc:
            fail(f"backup refused: {exc}")
        out = {"ok": True, "created_at": manifest["created_at"], "schema_revision": manifest["schema_revision"],
               "parts": [p["name"] for p in manifest["parts"]]}
        if json_out:
            print_json(out)
        else:
            console.print(f"[green]backup intact[/]: {len(out['parts'])} parts match their SHA-256, the passphrase "
                          f"opens the keys, the manifest's seal verifies ({out['created_at']}, schema "
                          f"{out['schema_revision']})", highlight=False, soft_wrap=True)
        return
    target = resolve_data_dir(data)
    try:
        with progress_bar() as bar:
            task = bar.add_task("restore", total=2 * parts + 3)
            result = restore_backup(backup_dir, target, passphrase, database_url=database_url,
                                    progress=_stepper(bar, task))
    except BackupError as exc:
        fail(f"backup refused: {exc}")
    out = result.as_dict()
    if json_out:
        print_json(out)
        return
    console.print(f"[green]restored[/] the backup of {out['backup_created_at']} into {escape(str(target))}: "
                  f"{', '.join(out['restored'])}; schema {out['schema']['backup']} → {out['schema']['now']}",
                  highlight=False, soft_wrap=True)
    console.print(f"Next: [bold]kuzet audit verify --data {escape(str(target))}[/], then [bold]kuzet serve[/]",
                  highlight=False, soft_wrap=True)
