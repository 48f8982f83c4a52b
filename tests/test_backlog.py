"""Tests for sparc.backlog: task files, the backlog graph and status updates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from structlog.testing import capture_logs

from sparc.backlog import (
    MAX_TASK_FILE_BYTES,
    Backlog,
    Priority,
    Task,
    TaskFile,
    TaskStatus,
    format_backlog,
    load_task,
    set_status,
)
from sparc.errors import BacklogError, CycleError

KNOWN_FIELDS = (
    "id, title, description, specialist, status, priority, estimated_hours, "
    "depends_on, references, acceptance_criteria, phases, schema, tune, "
    "blocked_reason, workflow, require_approval"
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_bytes(text.encode("utf-8"))
    return path


def task_text(task_id: str, *lines: str) -> str:
    return "\n".join([f"id: {task_id}", f"title: Task {task_id}", *lines]) + "\n"


def load_error(path: Path) -> str:
    with pytest.raises(BacklogError) as caught:
        load_task(path)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def backlog_error(folder: Path) -> BacklogError:
    with pytest.raises(BacklogError) as caught:
        Backlog.load(folder)
    return caught.value


# Loading one task file


def test_load_task_reads_every_field(tmp_path: Path) -> None:
    """A file using every field loads into a frozen Task with those values."""
    path = write(
        tmp_path,
        "DB-001.yaml",
        "# Users and their roles\n"
        "id: DB-001\n"
        "title: Users table\n"
        "description: |\n"
        "  Store users.\n"
        "specialist: database-engineer\n"
        "status: READY\n"
        "priority: critical\n"
        "estimated_hours: 2.5\n"
        "depends_on: [DB-000]\n"
        "references:\n"
        "  - docs/specification.md\n"
        "acceptance_criteria:\n"
        "  - emails are unique\n"
        "phases: [refinement, completion]\n"
        "schema:\n"
        "  tables:\n"
        "    - name: users\n"
        "workflow: refinement-only\n"
        "require_approval: [completion]\n",
    )

    task_file = load_task(path)

    assert task_file == TaskFile(path, task_file.task)
    task = task_file.task
    assert task.id == "DB-001"
    assert task.title == "Users table"
    assert task.description == "Store users.\n"
    assert task.specialist == "database-engineer"
    assert task.status is TaskStatus.READY
    assert task.priority is Priority.CRITICAL
    assert task.estimated_hours == 2.5
    assert task.depends_on == ("DB-000",)
    assert task.references == ("docs/specification.md",)
    assert task.acceptance_criteria == ("emails are unique",)
    assert task.phases == ("refinement", "completion")
    assert task.schema == {"tables": [{"name": "users"}]}
    assert task.workflow == "refinement-only"
    assert task.require_approval == ("completion",)
    with pytest.raises(ValueError):
        task.status = TaskStatus.COMPLETE  # type: ignore[misc]


def test_load_task_defaults(tmp_path: Path) -> None:
    """Only id and title are required; the rest have defaults."""
    task = load_task(write(tmp_path, "A.yml", "id: A\ntitle: t\n")).task

    assert task.status is TaskStatus.NEW
    assert task.priority is Priority.MEDIUM
    assert (task.description, task.depends_on, task.phases, task.schema) == (
        "",
        (),
        None,
        None,
    )


def test_empty_phase_list_refused(tmp_path: Path) -> None:
    """An empty phase range is a mistake; leaving the key out means all phases."""
    path = write(tmp_path, "A.yaml", task_text("A", "phases: []"))

    assert load_error(path) == (
        f"{path}:3:9: phases: must name at least one phase; leave it out to run "
        "every phase"
    )


def test_backlog_module_does_not_need_langgraph() -> None:
    """The backlog is plain data: importing it loads no graph runtime."""
    code = "import sys, sparc.backlog; print('langgraph' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "False"


def test_priority_rank_orders_critical_first() -> None:
    """Ranks sort critical, high, medium, low."""
    ranked = sorted(Priority, key=lambda priority: priority.rank, reverse=True)
    assert [p.value for p in ranked] == ["low", "medium", "high", "critical"]


def test_malformed_yaml_names_line_and_column(tmp_path: Path) -> None:
    """A YAML syntax error reports the file, line and column from the parser."""
    path = write(tmp_path, "A.yaml", "id: A\ntitle: t\npriority: high: low\n")

    assert load_error(path) == (
        f"{path}:3:15: invalid YAML: mapping values are not allowed here"
    )


def test_unclosed_flow_sequence_names_where_it_started(tmp_path: Path) -> None:
    """The parser's context (what it was reading, from which line) stays."""
    path = write(tmp_path, "A.yaml", "id: A\ntitle: [t\n")

    assert load_error(path) == (
        f"{path}:3:1: invalid YAML: while parsing a flow sequence (line 2): "
        "expected ',' or ']', but got '<stream end>'"
    )


def test_wrong_type_names_field_and_expectation(tmp_path: Path) -> None:
    """A value of the wrong kind names the field, what it needs and what it got."""
    path = write(tmp_path, "A.yaml", "id: A\ntitle: 5\n")

    error = load_error(path)

    assert error == f"{path}:2:8: title: expected a string, got an integer 5"


def test_nested_field_path_is_dotted(tmp_path: Path) -> None:
    """An error inside a list names the item by index."""
    path = write(tmp_path, "A.yaml", task_text("A", "acceptance_criteria: [ok, 3]"))

    assert load_error(path) == (
        f"{path}:3:27: acceptance_criteria[1]: expected a string, got an integer 3"
    )


def test_bad_enum_value_lists_allowed_values(tmp_path: Path) -> None:
    """An unknown status lists the statuses that exist."""
    path = write(tmp_path, "A.yaml", task_text("A", "status: done"))

    assert load_error(path) == (
        f"{path}:3:9: status: expected one of NEW, READY, IN_PROGRESS, BLOCKED, "
        "COMPLETE, got a string 'done'"
    )


def test_negative_hours_refused(tmp_path: Path) -> None:
    """estimated_hours must not be negative."""
    path = write(tmp_path, "A.yaml", task_text("A", "estimated_hours: -1"))

    assert load_error(path) == (
        f"{path}:3:18: estimated_hours: must be 0 or more, got an integer -1"
    )


def test_hours_as_text_refused(tmp_path: Path) -> None:
    """A quoted number is not silently turned into one."""
    path = write(tmp_path, "A.yaml", task_text("A", 'estimated_hours: "3"'))

    assert load_error(path) == (
        f"{path}:3:18: estimated_hours: expected a number, got a string '3'"
    )


def test_unknown_field_names_key_and_known_fields(tmp_path: Path) -> None:
    """A misspelt key is an error that lists every known field."""
    path = write(tmp_path, "A.yaml", task_text("A", "prority: high"))

    assert load_error(path) == (
        f"{path}:3:1: unknown field 'prority'; known fields are {KNOWN_FIELDS}"
    )


def test_missing_title(tmp_path: Path) -> None:
    """A required field that is absent is named."""
    path = write(tmp_path, "A.yaml", "id: A\n")

    assert load_error(path) == f"{path}: title: required field is missing"


@pytest.mark.parametrize(
    ("task_id", "problem"),
    [
        (
            "'DB 1'",
            "'DB 1' is not a valid task id; use letters, digits, '-', '_' and '.', "
            "starting with a letter or digit (like DB-001)",
        ),
        (
            "'-x'",
            "'-x' is not a valid task id; use letters, digits, '-', '_' and '.', "
            "starting with a letter or digit (like DB-001)",
        ),
        ("CON", "'CON' cannot be a file name on every system; pick another task id"),
        ("a.", "'a.' cannot be a file name on every system; pick another task id"),
    ],
)
def test_id_must_be_a_portable_file_name(
    tmp_path: Path, task_id: str, problem: str
) -> None:
    """Ids that cannot be file names everywhere are refused."""
    path = write(tmp_path, "x.yaml", f"id: {task_id}\ntitle: t\n")

    assert load_error(path) == f"{path}:1:5: id: {problem}"


def test_reference_leaving_workspace_refused(tmp_path: Path) -> None:
    """References must stay inside the workspace."""
    path = write(tmp_path, "A.yaml", task_text("A", "references: [../secret.md]"))

    assert load_error(path) == (
        f"{path}:3:14: references[0]: '../secret.md' leaves the workspace; give a "
        "path relative to the workspace root"
    )


def test_file_name_must_equal_id(tmp_path: Path) -> None:
    """The error names the file and both the name and the id."""
    path = write(tmp_path, "DB-002.yaml", task_text("DB-001"))

    assert load_error(path) == (
        f"{path}:1:5: file name 'DB-002' differs from id 'DB-001'; rename the file "
        "to DB-001.yaml or change the id"
    )


def test_self_dependency_refused(tmp_path: Path) -> None:
    """A task cannot depend on itself."""
    path = write(tmp_path, "A.yaml", task_text("A", "depends_on: [B, A]"))

    assert load_error(path) == (
        f"{path}:3:13: depends_on: task A depends on itself; remove A from depends_on"
    )


def test_repeated_dependency_refused(tmp_path: Path) -> None:
    """A dependency listed twice is reported."""
    path = write(tmp_path, "A.yaml", task_text("A", "depends_on: [B, B]"))

    assert load_error(path) == (
        f"{path}:3:13: depends_on: 'B' is listed twice; list it once"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- id: A\n", ":1:1: expected a mapping of task fields, got a list"),
        ("just text\n", ":1:1: expected a mapping of task fields, got a string"),
        ("", ": the file is empty; expected a mapping of task fields"),
        ("# comment\n", ": the file is empty; expected a mapping of task fields"),
    ],
)
def test_file_must_be_a_mapping(tmp_path: Path, text: str, message: str) -> None:
    """Anything but a mapping at the top is refused."""
    path = write(tmp_path, "A.yaml", text)

    assert load_error(path) == f"{path}{message}"


def test_repeated_key_refused(tmp_path: Path) -> None:
    """YAML would keep the last of two equal keys; a task file may not have two."""
    path = write(tmp_path, "A.yaml", task_text("A", "status: NEW", "status: READY"))

    assert load_error(path) == (
        f"{path}:4:1: invalid YAML: key 'status' appears twice (first at line 3); "
        "keep one"
    )


def test_python_tags_are_not_constructed(tmp_path: Path) -> None:
    """Only plain YAML types load; object tags are errors."""
    path = write(
        tmp_path, "A.yaml", task_text("A", "schema: !!python/object:os.system {}")
    )

    assert load_error(path) == (
        f"{path}:3:9: invalid YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object:os.system'"
    )


def test_bad_tagged_scalar_has_position(tmp_path: Path) -> None:
    """A tagged value that cannot be read names its line and column."""
    path = write(tmp_path, "A.yaml", task_text("A", "schema: {n: !!int abc}"))

    assert load_error(path) == (
        f"{path}:3:13: invalid YAML: cannot read this value: invalid literal for "
        "int() with base 10: 'abc'"
    )


def test_file_over_one_mib_refused(tmp_path: Path) -> None:
    """Large files are refused before parsing."""
    filler = "#" * (MAX_TASK_FILE_BYTES - len(task_text("A")) + 1)
    path = write(tmp_path, "A.yaml", task_text("A") + filler)

    assert path.stat().st_size == MAX_TASK_FILE_BYTES + 1
    assert load_error(path) == (
        f"{path}: file is larger than 1 MiB; a task file must be smaller"
    )


def test_file_of_exactly_one_mib_loads(tmp_path: Path) -> None:
    """The limit itself is allowed."""
    filler = "#" * (MAX_TASK_FILE_BYTES - len(task_text("A")))
    path = write(tmp_path, "A.yaml", task_text("A") + filler)

    assert load_task(path).task.id == "A"


def test_file_that_grows_past_one_mib_is_refused(tmp_path: Path) -> None:
    """The size limit counts what is read, not what the file said it held."""
    path = write(tmp_path, "A.yaml", task_text("A"))
    load_task(path)

    with path.open("ab") as handle:
        handle.write(b"#" * MAX_TASK_FILE_BYTES)

    assert load_error(path) == (
        f"{path}: file is larger than 1 MiB; a task file must be smaller"
    )


# Reading the same file again


def test_edit_in_place_keeping_size_and_times_is_read(tmp_path: Path) -> None:
    """An edit that keeps the size, inode and modification time is still seen."""
    path = write(tmp_path, "A.yaml", task_text("A", "priority: high"))
    before = path.stat()
    assert load_task(path).task.priority is Priority.HIGH

    with path.open("r+b") as handle:
        handle.seek(path.read_bytes().index(b"high"))
        handle.write(b"low ")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()

    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    assert load_task(path).task.priority is Priority.LOW
    assert Backlog.load(tmp_path).get("A").task.priority is Priority.LOW


def test_reading_again_checks_the_file_again(tmp_path: Path) -> None:
    """A file read before is refused once it turns invalid, a link or too big."""
    path = write(tmp_path, "A.yaml", task_text("A"))
    load_task(path)
    Backlog.load(tmp_path)

    path.write_text(task_text("A", "status: DONE"), encoding="utf-8")
    assert "status: expected one of" in load_error(path)

    target = write(tmp_path, "target.txt", task_text("A"))
    path.unlink()
    path.symlink_to(target)
    assert load_error(path).endswith(
        "is a symbolic link; a task file must be a regular file in the backlog folder"
    )

    path.unlink()
    write(tmp_path, "A.yaml", task_text("A") + "#" * MAX_TASK_FILE_BYTES)
    assert load_error(path).endswith(
        "file is larger than 1 MiB; a task file must be smaller"
    )


def test_same_bytes_elsewhere_are_checked_for_their_own_name(tmp_path: Path) -> None:
    """The file name must match the id wherever the same text is found."""
    load_task(write(tmp_path, "A.yaml", task_text("A")))
    other = write(tmp_path, "B.yaml", task_text("A"))

    assert "file name 'B' differs from id 'A'" in load_error(other)


def test_callers_cannot_change_what_later_reads_return(tmp_path: Path) -> None:
    """The mutable `schema` of a task read again is a fresh copy each time."""
    path = write(tmp_path, "A.yaml", task_text("A", "schema: {tables: [users]}"))

    load_task(path).task.schema["tables"].append("orders")  # type: ignore[index]
    Backlog.load(tmp_path).get("A").task.schema["added"] = True  # type: ignore[index]

    assert load_task(path).task.schema == {"tables": ["users"]}
    assert Backlog.load(tmp_path).get("A").task.schema == {"tables": ["users"]}
    with pytest.raises(ValidationError):
        load_task(path).task.title = "changed"  # type: ignore[misc]


def test_status_set_is_what_the_next_read_returns(tmp_path: Path) -> None:
    """After set_status the next read, from the cache or not, has the new status."""
    path = write(tmp_path, "A.yaml", task_text("A", "schema: {n: 1}"))
    assert load_task(path).task.status is TaskStatus.NEW

    set_status(path, TaskStatus.BLOCKED, reason="waits")
    task = load_task(path).task

    assert (task.status, task.blocked_reason) == (TaskStatus.BLOCKED, "waits")
    assert task == Backlog.load(tmp_path).get("A").task
    assert task.schema == {"n": 1}


def test_nesting_deeper_than_32_levels_refused(tmp_path: Path) -> None:
    """The top mapping is level 1; a 33rd nested collection is refused."""
    ok = write(
        tmp_path, "A.yaml", task_text("A", "schema: {n: " + "[" * 30 + "]" * 30 + "}")
    )
    deep = write(
        tmp_path, "B.yaml", task_text("B", "schema: {n: " + "[" * 31 + "]" * 31 + "}")
    )

    nested: list[object] = []
    for _ in range(29):
        nested = [nested]
    assert load_task(ok).task.schema == {"n": nested}
    assert load_error(deep) == (
        f"{deep}:3:43: invalid YAML: nesting deeper than 32 levels"
    )


def test_deep_nesting_through_alias_refused(tmp_path: Path) -> None:
    """An alias cannot smuggle nesting past the limit."""
    nested = "[" * 20 + "]" * 20
    path = write(
        tmp_path,
        "A.yaml",
        task_text(
            "A",
            f"description: &deep {nested}",
            "schema: " + "[" * 12 + "*deep" + "]" * 12,
        ),
    )

    assert load_error(path) == (
        f"{path}:4:21: invalid YAML: nesting deeper than 32 levels "
        "(through alias *deep)"
    )


def test_alias_expansion_is_bounded(tmp_path: Path) -> None:
    """A few lines of aliases cannot expand into millions of values."""
    lines = ["schema:", "  a: &a [" + ", ".join(["x"] * 10) + "]"]
    for name, previous in zip("bcde", "abcd", strict=True):
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    path = write(tmp_path, "A.yaml", task_text("A", *lines))

    assert load_error(path) == (
        f"{path}:8:6: invalid YAML: the document expands to more than 100000 values "
        "through aliases"
    )


def test_recursive_alias_refused(tmp_path: Path) -> None:
    """An alias inside the value it names would make a loop."""
    path = write(tmp_path, "A.yaml", task_text("A", "schema: &s {self: *s}"))

    assert load_error(path) == (
        f"{path}:3:19: invalid YAML: alias *s refers to a value that contains it"
    )


def test_not_utf8_refused(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are reported with their offset."""
    path = tmp_path / "A.yaml"
    path.write_bytes(b"id: A\ntitle: caf\xe9\n")

    assert load_error(path) == (
        f"{path}: not UTF-8 text (byte 0xe9 at offset 16); save the file as UTF-8"
    )


def test_control_character_refused_with_position(tmp_path: Path) -> None:
    """Characters YAML forbids are reported at their line and column."""
    path = write(tmp_path, "A.yaml", "id: A\ntitle: a\x00b\n")

    assert load_error(path) == (
        f"{path}:2:9: invalid YAML: unacceptable character #x0000; remove it or "
        "write it as an escape in a double-quoted string"
    )


# The backlog graph


def make_backlog(folder: Path, tasks: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for task_id, extra in tasks.items():
        write(folder, f"{task_id}.yaml", task_text(task_id, *extra.splitlines()))
    return folder


def test_missing_folder_is_an_empty_backlog(tmp_path: Path) -> None:
    """A workspace without docs/backlog has no tasks."""
    backlog = Backlog.load(tmp_path / "docs" / "backlog")

    assert backlog.tasks == []
    assert backlog.ready() == []
    assert backlog.topological_order() == []


def test_load_reads_yaml_and_yml_in_id_order(tmp_path: Path) -> None:
    """Both suffixes load; other files and hidden files are ignored."""
    write(tmp_path, "B.yml", task_text("B"))
    write(tmp_path, "A.yaml", task_text("A"))
    write(tmp_path, "notes.md", "not a task")
    write(tmp_path, ".A.yaml.swp.yaml", "garbage: [")

    backlog = Backlog.load(tmp_path)

    assert [tf.id for tf in backlog.tasks] == ["A", "B"]
    assert backlog.get("B").path == tmp_path / "B.yml"
    assert "A" in backlog and len(backlog) == 2


def test_first_invalid_file_in_name_order_is_reported(tmp_path: Path) -> None:
    """Errors are deterministic: the first bad file by name wins."""
    write(tmp_path, "B.yaml", "id: B\n")
    write(tmp_path, "C.yaml", "id: [\n")

    assert str(backlog_error(tmp_path)) == (
        f"{tmp_path / 'B.yaml'}: title: required field is missing"
    )


def test_duplicate_ids_name_every_file(tmp_path: Path) -> None:
    """The same id in a .yaml and a .yml file is a duplicate."""
    write(tmp_path, "A.yaml", task_text("A"))
    write(tmp_path, "A.yml", task_text("A"))

    error = backlog_error(tmp_path)

    assert str(error) == (
        f"duplicate task id 'A'; keep one file per task "
        f"({tmp_path / 'A.yaml'}, {tmp_path / 'A.yml'})"
    )
    assert error.paths == [tmp_path / "A.yaml", tmp_path / "A.yml"]


def test_ids_differing_only_in_case_are_duplicates(tmp_path: Path) -> None:
    """Ids must stay distinct on case-insensitive file systems."""
    files = [
        TaskFile(tmp_path / "db-1.yaml", Task(id="db-1", title="t")),
        TaskFile(tmp_path / "DB-1.yaml", Task(id="DB-1", title="t")),
    ]

    with pytest.raises(BacklogError) as caught:
        Backlog(tmp_path, files)

    assert str(caught.value) == (
        "task ids 'DB-1' and 'db-1' differ only in letter case, which some file "
        f"systems cannot tell apart; rename one ({tmp_path / 'db-1.yaml'}, "
        f"{tmp_path / 'DB-1.yaml'})"
    )


def test_unknown_dependency_names_file_and_id(tmp_path: Path) -> None:
    """A dependency on a task without a file is an error."""
    make_backlog(tmp_path, {"A": "", "B": "depends_on: [A, Z-9]"})

    error = backlog_error(tmp_path)

    assert str(error) == (
        f"{tmp_path / 'B.yaml'}: depends_on: unknown task 'Z-9'; add "
        f"{tmp_path / 'Z-9'}.yaml or remove it from depends_on"
    )
    assert error.task_ids == ["B", "Z-9"]


def test_self_dependency_in_backlog(tmp_path: Path) -> None:
    """Loading a backlog with a self-dependent task fails on that file."""
    make_backlog(tmp_path, {"A": "depends_on: [A]"})

    assert str(backlog_error(tmp_path)) == (
        f"{tmp_path / 'A.yaml'}:3:13: depends_on: task A depends on itself; remove A "
        "from depends_on"
    )


def test_two_task_cycle_names_both(tmp_path: Path) -> None:
    """A loop of two tasks names both, in order, with their files."""
    make_backlog(
        tmp_path, {"DB-001": "depends_on: [DB-002]", "DB-002": "depends_on: [DB-001]"}
    )

    error = backlog_error(tmp_path)

    assert isinstance(error, CycleError)
    assert str(error) == (
        "dependency cycle: DB-001 -> DB-002 -> DB-001; remove one of these "
        f"dependencies ({tmp_path / 'DB-001.yaml'}, {tmp_path / 'DB-002.yaml'})"
    )
    assert error.task_ids == ["DB-001", "DB-002"]


def test_three_task_cycle_names_all_in_order(tmp_path: Path) -> None:
    """A loop reached from outside still names exactly its members, in order."""
    make_backlog(
        tmp_path,
        {
            "A": "depends_on: [D]",
            "B": "depends_on: [C]",
            "C": "depends_on: [A]",
            "D": "depends_on: [B]",
            "E": "depends_on: [B]",
        },
    )

    error = backlog_error(tmp_path)

    assert isinstance(error, CycleError)
    assert str(error) == (
        "dependency cycle: A -> D -> B -> C -> A; remove one of these dependencies "
        f"({tmp_path / 'A.yaml'}, {tmp_path / 'D.yaml'}, {tmp_path / 'B.yaml'}, "
        f"{tmp_path / 'C.yaml'})"
    )
    assert error.task_ids == ["A", "D", "B", "C"]


def test_cycle_search_handles_long_chains(tmp_path: Path) -> None:
    """A chain longer than the recursion limit is searched without recursion."""
    count = sys.getrecursionlimit() + 100
    files = [
        TaskFile(
            tmp_path / f"T{i}.yaml",
            Task(id=f"T{i}", title="t", depends_on=[f"T{i + 1}"] if i < count else []),
        )
        for i in range(count + 1)
    ]

    backlog = Backlog(tmp_path, files)

    assert backlog.topological_order()[:2] == [f"T{count}", f"T{count - 1}"]


def test_ready_orders_by_priority_then_id(tmp_path: Path) -> None:
    """Ready tasks come most urgent first, then by id; others are left out."""
    make_backlog(
        tmp_path,
        {
            "A": "priority: low",
            "B": "priority: critical\nstatus: READY",
            "C": "priority: high",
            "D": "priority: critical",
            "E": "priority: critical\ndepends_on: [F]",
            "F": "status: IN_PROGRESS",
            "G": "status: COMPLETE\npriority: critical",
            "H": "status: BLOCKED\npriority: critical",
            "I": "depends_on: [G]\npriority: high",
        },
    )

    backlog = Backlog.load(tmp_path)

    assert [tf.id for tf in backlog.ready()] == ["B", "D", "C", "I", "A"]
    assert backlog.is_ready("I") and not backlog.is_ready("E")
    assert backlog.blocked_by("E") == ["F"]
    assert backlog.blocked_by("I") == []


def test_graph_queries(tmp_path: Path) -> None:
    """Dependents and topological order follow the depends_on edges."""
    make_backlog(
        tmp_path,
        {
            "A": "priority: low",
            "B": "depends_on: [A]\npriority: critical",
            "C": "depends_on: [A]",
            "D": "priority: high",
            "E": "depends_on: [C, B]",
        },
    )

    backlog = Backlog.load(tmp_path)

    assert backlog.dependents("A") == ["B", "C"]
    assert backlog.dependents("E") == []
    assert backlog.topological_order() == ["D", "A", "B", "C", "E"]


def test_get_unknown_id_says_where_it_looked(tmp_path: Path) -> None:
    """Asking for a missing task names the id and the folder."""
    backlog = Backlog.load(make_backlog(tmp_path / "backlog", {"A": ""}))

    with pytest.raises(BacklogError) as caught:
        backlog.get("B")

    assert str(caught.value) == (
        f"unknown task 'B': no B.yaml or B.yml in {tmp_path / 'backlog'}; check the "
        "id with `sparc backlog`"
    )
    with pytest.raises(BacklogError):
        backlog.dependents("B")


def test_format_backlog(tmp_path: Path) -> None:
    """The table shows every task, blocked reasons, then the ready list."""
    make_backlog(
        tmp_path,
        {
            "DB-001": "priority: high",
            "DB-002": "depends_on: [DB-001, DB-004]",
            "DB-003": 'status: BLOCKED\nblocked_reason: "waiting for\\n the DBA"',
            "DB-004": "status: COMPLETE",
        },
    )

    text = format_backlog(Backlog.load(tmp_path))

    assert text == (
        "ID      STATUS    PRIORITY  TITLE        DEPENDS ON\n"
        "DB-001  NEW       high      Task DB-001  -\n"
        "DB-002  NEW       medium    Task DB-002  DB-001, DB-004\n"
        "DB-003  BLOCKED   medium    Task DB-003  -\n"
        "    blocked: waiting for the DBA\n"
        "DB-004  COMPLETE  medium    Task DB-004  -\n"
        "ready: DB-001\n"
    )


def test_format_empty_backlog(tmp_path: Path) -> None:
    """An empty backlog says so and has nothing ready."""
    text = format_backlog(Backlog.load(tmp_path))

    assert text == (
        "ID  STATUS  PRIORITY  TITLE  DEPENDS ON\n"
        f"(no tasks in {tmp_path})\n"
        "ready: none\n"
    )


# Updating the status in place


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            "# Task A\nid: A   # the id\n\ntitle: 'It''s here'\nstatus: NEW\n"
            "priority: high\n",
            "# Task A\nid: A   # the id\n\ntitle: 'It''s here'\nstatus: COMPLETE\n"
            "priority: high\n",
            id="comments-and-blank-lines",
        ),
        pytest.param(
            'id: A\ntitle: t\nstatus: "NEW"\n',
            "id: A\ntitle: t\nstatus: COMPLETE\n",
            id="double-quoted",
        ),
        pytest.param(
            "id: A\ntitle: t\nstatus: 'NEW' # was new\n",
            "id: A\ntitle: t\nstatus: COMPLETE # was new\n",
            id="single-quoted-with-comment",
        ),
        pytest.param(
            "id: A\ntitle: t\nstatus: NEW  # note\ndescription: x\n",
            "id: A\ntitle: t\nstatus: COMPLETE  # note\ndescription: x\n",
            id="plain-with-comment",
        ),
        pytest.param(
            "{id: A, status: NEW, title: t}\n",
            "{id: A, status: COMPLETE, title: t}\n",
            id="flow-mapping",
        ),
        pytest.param(
            "id: A\r\ntitle: t\r\nstatus: NEW  # note\r\n\r\n",
            "id: A\r\ntitle: t\r\nstatus: COMPLETE  # note\r\n\r\n",
            id="crlf",
        ),
        pytest.param(
            "id: A\ntitle: t\nstatus: NEW",
            "id: A\ntitle: t\nstatus: COMPLETE",
            id="last-line-without-newline",
        ),
        pytest.param(
            "\ufeffid: A\ntitle: t\nstatus: NEW\n",
            "\ufeffid: A\ntitle: t\nstatus: COMPLETE\n",
            id="byte-order-mark",
        ),
        pytest.param(
            "id: A\ntitle: t\nschema:\n  status: NEW\nstatus: NEW\n",
            "id: A\ntitle: t\nschema:\n  status: NEW\nstatus: COMPLETE\n",
            id="only-top-level-key",
        ),
        pytest.param(
            "id: A\ntitle: t\n",
            "id: A\ntitle: t\nstatus: COMPLETE\n",
            id="missing-key-appended",
        ),
        pytest.param(
            "id: A\ntitle: t  # end",
            "id: A\ntitle: t  # end\nstatus: COMPLETE",
            id="missing-key-no-final-newline",
        ),
        pytest.param(
            "id: A\r\ntitle: t\r\n",
            "id: A\r\ntitle: t\r\nstatus: COMPLETE\r\n",
            id="missing-key-crlf",
        ),
        pytest.param(
            "  id: A\n  title: t\n",
            "  id: A\n  title: t\n  status: COMPLETE\n",
            id="missing-key-indented-mapping",
        ),
        pytest.param(
            "{id: A, title: t  # comment\n}\n",
            "{id: A, title: t, status: COMPLETE  # comment\n}\n",
            id="missing-key-flow-mapping",
        ),
    ],
)
def test_set_status_changes_only_the_status(
    tmp_path: Path, before: str, after: str
) -> None:
    """Every byte but the status value stays as it was."""
    path = write(tmp_path, "A.yaml", before)

    set_status(path, TaskStatus.COMPLETE)

    assert path.read_bytes() == after.encode("utf-8")
    assert load_task(path).task.status is TaskStatus.COMPLETE


def test_set_status_with_reason_writes_blocked_reason(tmp_path: Path) -> None:
    """A reason is written as one double-quoted line, escaped."""
    path = write(tmp_path, "A.yaml", "id: A\ntitle: t\nstatus: NEW # s\n")
    reason = 'needs "DBA"\\ok\nnext\tline\u2028é\x07'

    set_status(path, TaskStatus.BLOCKED, reason=reason)

    assert (
        path.read_bytes()
        == (
            "id: A\ntitle: t\nstatus: BLOCKED # s\n"
            'blocked_reason: "needs \\"DBA\\"\\\\ok\\nnext\\tline\\u2028é\\u0007"\n'
        ).encode()
    )
    assert load_task(path).task.blocked_reason == reason


def test_set_status_replaces_existing_reason_and_keeps_it_later(
    tmp_path: Path,
) -> None:
    """An existing reason is replaced in place and kept when unblocking."""
    before = "id: A\ntitle: t\nblocked_reason: 'old' # why\nstatus: BLOCKED\n"
    path = write(tmp_path, "A.yaml", before)

    set_status(path, TaskStatus.BLOCKED, reason="new")
    blocked = path.read_bytes()
    set_status(path, TaskStatus.READY)

    assert blocked == b'id: A\ntitle: t\nblocked_reason: "new" # why\nstatus: BLOCKED\n'
    assert path.read_bytes() == (
        b'id: A\ntitle: t\nblocked_reason: "new" # why\nstatus: READY\n'
    )


def test_set_status_fills_an_empty_reason(tmp_path: Path) -> None:
    """A key with no value gets a space and the value after its colon."""
    path = write(tmp_path, "A.yaml", "id: A\ntitle: t\nblocked_reason:\nstatus: NEW")

    set_status(path, TaskStatus.BLOCKED, reason="r")

    assert path.read_bytes() == (
        b'id: A\ntitle: t\nblocked_reason: "r"\nstatus: BLOCKED'
    )


def test_set_status_same_value_does_not_rewrite(tmp_path: Path) -> None:
    """Setting the status a file already has leaves the file alone."""
    path = write(tmp_path, "A.yaml", "id: A\ntitle: t\nstatus: READY\n")
    inode = path.stat().st_ino

    with capture_logs() as logs:
        set_status(path, TaskStatus.READY)

    assert path.stat().st_ino == inode
    assert path.read_bytes() == b"id: A\ntitle: t\nstatus: READY\n"
    assert logs == [
        {
            "event": "task_status_set",
            "log_level": "info",
            "path": str(path),
            "task_id": "A",
            "status": "READY",
            "changed": False,
        }
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "id: A\ntitle: t\nstatus: >-\n  NEW\n",
            "3:9: status: cannot rewrite this value in place; write it as a plain "
            "or quoted value on the key's line",
            id="block-scalar",
        ),
        pytest.param(
            "id: A\ndescription: &s NEW\ntitle: t\nstatus: *s\n",
            "2:14: status: cannot rewrite this value in place; write it as a plain "
            "or quoted value on the key's line",
            id="alias",
        ),
        pytest.param(
            "id: A\ntitle: t\nstatus: &s NEW\ndescription: *s\n",
            "could not set status COMPLETE in place; the edited file would not "
            "load: {path}:4:14: invalid YAML: found undefined alias 's'",
            id="anchor-used-elsewhere",
        ),
        pytest.param(
            "id: A\ntitle: t\n...\n",
            "could not set status COMPLETE in place; the edited file would not "
            "load: {path}:4:1: invalid YAML: expected '<document start>', but found "
            "'<block mapping start>'",
            id="document-end-marker",
        ),
    ],
)
def test_set_status_refuses_what_it_cannot_edit_safely(
    tmp_path: Path, text: str, message: str
) -> None:
    """When the edit cannot be made exactly, the file is left untouched."""
    path = write(tmp_path, "A.yaml", text)

    with pytest.raises(BacklogError) as caught:
        set_status(path, TaskStatus.COMPLETE)

    separator = ":" if message[0].isdigit() else ": "
    expected = f"{path}{separator}{message.format(path=path)}"
    assert str(caught.value) == expected
    assert path.read_bytes() == text.encode()


def test_set_status_refuses_an_invalid_file(tmp_path: Path) -> None:
    """A file that does not load is not edited."""
    path = write(tmp_path, "A.yaml", "id: A\ntitle: t\nstatuss: NEW\n")

    with pytest.raises(BacklogError, match="unknown field 'statuss'"):
        set_status(path, TaskStatus.READY)

    assert path.read_bytes() == b"id: A\ntitle: t\nstatuss: NEW\n"


# Property: set_status touches the status span and nothing else

# A leading letter keeps plain values strings (never `no`, `null` or `1.5`).
_PLAIN_TEXT = st.text(alphabet="abcxyz019 -.'", max_size=12).map(lambda s: "v" + s)
_COMMENT_TEXT = st.text(
    alphabet=st.characters(
        min_codepoint=0x20, max_codepoint=0x2FF, blacklist_categories=("Cc",)
    ),
    max_size=20,
)


@st.composite
def _scalar(draw: st.DrawFn, value: str) -> str:
    style = draw(st.sampled_from(["plain", "single", "double"]))
    if style == "single":
        return "'" + value.replace("'", "''") + "'"
    if style == "double":
        return '"' + value + '"'
    return value


@st.composite
def _task_file(draw: st.DrawFn) -> tuple[str, str, str, str]:
    """A task file as (before status value, status value, after, newline)."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    blank = draw(st.sampled_from(["", " ", "  "]))

    def comment() -> str:
        if not draw(st.booleans()):
            return ""
        return draw(st.sampled_from([" ", "  "])) + "# " + draw(_COMMENT_TEXT)

    entries = [
        f"id:{blank} {draw(_scalar('A-1'))}",
        f"title: {draw(_scalar(draw(_PLAIN_TEXT)))}",
        f"priority: {draw(_scalar(draw(st.sampled_from(list(Priority)))))}",
        f"description: {draw(_scalar(draw(_PLAIN_TEXT)))}",
        f"acceptance_criteria: [{draw(_scalar('x'))}, {draw(_scalar('y'))}]",
        "schema:" + newline + f"  status: {draw(_scalar('NEW'))}",
    ]
    entries = draw(st.permutations(entries))
    position = draw(st.integers(0, len(entries)))
    status_value = draw(_scalar(draw(st.sampled_from(list(TaskStatus)))))

    lines = [comment() for _ in range(draw(st.integers(0, 2)))]
    lines = [line.lstrip() for line in lines if line]
    for index, entry in enumerate(entries):
        if index == position:
            lines.append("\x00")
        lines.append(entry + comment())
        if draw(st.booleans()):
            lines.append("")
    if position == len(entries):
        lines.append("\x00")

    text = newline.join(lines)
    if draw(st.booleans()):
        text += newline
    before, after = text.split("\x00")
    before += f"status:{blank} "
    after = comment() + after
    return before, status_value, after, newline


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(file=_task_file(), new_status=st.sampled_from(list(TaskStatus)))
def test_set_status_property_changes_only_the_status_span(
    tmp_path: Path, file: tuple[str, str, str, str], new_status: TaskStatus
) -> None:
    """For generated files, the result is the file with the value spliced in."""
    before, value, after, _newline = file
    path = write(tmp_path, "A-1.yaml", before + value + after)

    set_status(path, new_status)

    assert path.read_bytes() == (before + new_status.value + after).encode("utf-8")


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(file=_task_file(), reason=st.text(max_size=40))
def test_set_status_property_reason_reads_back(
    tmp_path: Path, file: tuple[str, str, str, str], reason: str
) -> None:
    """Any reason text reads back exactly, and the rest of the file is kept."""
    before, value, after, newline = file
    path = write(tmp_path, "A-1.yaml", before + value + after)

    set_status(path, TaskStatus.BLOCKED, reason=reason)

    text = path.read_bytes().decode("utf-8")
    head, added = text.rsplit("blocked_reason: ", 1)
    expected_head = before + "BLOCKED" + after
    if not after.endswith(newline):
        expected_head += newline
    assert head == expected_head
    assert ("\n" in added.rstrip("\r\n")) is False
    assert load_task(path).task.blocked_reason == reason
