"""Runner pieces that need no rule engine: atomic writes, diffs, display names, per-file errors."""

from __future__ import annotations

import os
import stat

import pytest

from peftfix.source import runner
from peftfix.source.runner import FileJob, FixMode, check_file, display_name, unified_diff, write_atomically
from peftfix.source.settings import Settings


class TestAtomicWrite:
    def test_keeps_mode_and_leaves_no_temp_file(self, tmp_path):
        path = tmp_path / "train.py"
        path.write_bytes(b"old\n")
        path.chmod(0o751)
        inode_before = path.stat().st_ino
        write_atomically(path, b"new\n")
        assert path.read_bytes() == b"new\n"
        assert stat.S_IMODE(path.stat().st_mode) == 0o751
        assert path.stat().st_ino != inode_before  # replaced, not rewritten in place
        assert os.listdir(tmp_path) == ["train.py"]

    def test_symlink_stays_a_link(self, tmp_path):
        target = tmp_path / "real.py"
        target.write_bytes(b"old\n")
        link = tmp_path / "link.py"
        link.symlink_to(target)
        write_atomically(link, b"new\n")
        assert link.is_symlink() and target.read_bytes() == b"new\n"

    def test_failure_leaves_the_original_and_no_temp_file(self, tmp_path, monkeypatch):
        path = tmp_path / "train.py"
        path.write_bytes(b"old\n")

        def failing_replace(source, destination):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(runner.os, "replace", failing_replace)
        with pytest.raises(OSError):
            write_atomically(path, b"new\n")
        assert path.read_bytes() == b"old\n"
        assert os.listdir(tmp_path) == ["train.py"]

    def test_a_changed_file_is_left_as_it_is(self, tmp_path):
        path = tmp_path / "train.py"
        path.write_bytes(b"edited by the user\n")
        with pytest.raises(runner.ChangedOnDisk):
            write_atomically(path, b"fixed\n", expected=b"as read\n")
        assert path.read_bytes() == b"edited by the user\n"
        assert os.listdir(tmp_path) == ["train.py"]

    def test_hard_links_stay_links(self, tmp_path):
        path = tmp_path / "train.py"
        path.write_bytes(b"old\n")
        other = tmp_path / "same.py"
        os.link(path, other)
        write_atomically(path, b"new\n", expected=b"old\n")
        assert other.read_bytes() == b"new\n"
        assert path.stat().st_ino == other.stat().st_ino and path.stat().st_nlink == 2
        with pytest.raises(runner.ChangedOnDisk):
            write_atomically(other, b"newer\n", expected=b"old\n")
        assert path.read_bytes() == b"new\n"

    @pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file away needs root")
    def test_owner_and_group_are_kept(self, tmp_path):
        path = tmp_path / "train.py"
        path.write_bytes(b"old\n")
        os.chown(path, 4321, 4322)
        write_atomically(path, b"new\n", expected=b"old\n")
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4322)
        assert path.read_bytes() == b"new\n"

    def test_owner_that_cannot_be_kept_means_in_place(self, tmp_path, monkeypatch):
        path = tmp_path / "train.py"
        path.write_bytes(b"old\n")
        inode = path.stat().st_ino
        monkeypatch.setattr(runner, "_same_owner", lambda temp_path, status: False)
        write_atomically(path, b"new\n", expected=b"old\n")
        assert path.read_bytes() == b"new\n" and path.stat().st_ino == inode
        assert os.listdir(tmp_path) == ["train.py"]


class TestDiff:
    def test_headers_and_hunks(self):
        diff = unified_diff("a\nb\n", "a\nc\n", "src/x.py")
        assert diff.splitlines()[:2] == ["--- a/src/x.py", "+++ b/src/x.py"]
        assert "-b\n+c\n" in diff

    def test_missing_final_newline_is_marked(self):
        diff = unified_diff("a\nb", "a\nc", "x.py")
        assert diff.endswith("-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n")

    def test_only_real_line_ends_split_lines(self):
        # A form feed is not a line end; CRLF is kept as one.
        diff = unified_diff("a\x0cb\r\nc\r\n", "a\x0cb\r\nd\r\n", "x.py")
        assert "-c\r\n+d\r\n" in diff and " a\x0cb\r\n" in diff

    def test_no_change_no_diff(self):
        assert unified_diff("a\n", "a\n", "x.py") == ""


class TestDisplayName:
    def test_relative_to_cwd(self, tmp_path):
        assert display_name(tmp_path / "pkg" / "a.py", cwd=tmp_path) == "pkg/a.py"

    def test_outside_cwd_stays_absolute(self, tmp_path):
        outside = tmp_path.parent / "elsewhere.py"
        assert display_name(outside, cwd=tmp_path) == outside.as_posix()

    def test_relative_stays_as_given(self):
        assert display_name("examples/a.py") == "examples/a.py"


def test_unreadable_file_is_an_error_not_a_crash(tmp_path):
    job = FileJob(str(tmp_path / "missing.py"), "missing.py", Settings(frozenset()), FixMode.CHECK)
    result = check_file(job)
    assert result.error is not None and result.error.startswith("cannot read: ")
    assert result.findings == []
