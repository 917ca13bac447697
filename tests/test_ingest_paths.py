"""``ingest.paths``: the input folder of each file and its path as shown, by folder."""
import os
from pathlib import Path

from pipeline.ingest.paths import display, file_roots, parents


def _by_parents(files, roots):
    """What ``file_roots`` gives, file by file, from all of each file's ancestors."""
    return [next((roots[r] for r in parents(path) if r in roots), None) for path in files]


def test_file_roots_and_display_match_the_file_by_file_answer(tmp_path, monkeypatch):
    outer = tmp_path / "outer"
    (outer / "inner" / "deep").mkdir(parents=True)
    (tmp_path / "else").mkdir()
    files = [outer / "a.txt", outer / "inner" / "b.txt", outer / "inner" / "deep" / "c.txt",
             tmp_path / "else" / "d.txt", outer / "inner" / "e.txt"]
    for f in files:
        f.write_text("x")
    link = outer / "link.txt"  # a linked file is found where its target is
    os.symlink(tmp_path / "else" / "d.txt", link)
    files.append(link)
    monkeypatch.chdir(tmp_path)
    for given in ([outer, outer / "inner"], [Path("outer")], [Path("outer/inner"), Path(".")]):
        roots = {p.resolve(): p for p in given}
        listed = [*files, *(Path(os.path.relpath(f, tmp_path)) for f in files)]
        found = file_roots(listed, roots)
        assert found == _by_parents(listed, roots)
        for path, root in zip(listed, found):
            expected = path.as_posix()
            if root is not None:
                try:
                    expected = path.relative_to(root).as_posix()
                except ValueError:
                    pass
            assert display(path, root) == expected
    assert file_roots([outer / "inner" / "b.txt"], {outer.resolve(): outer}) == [outer]
    assert display(outer / "inner" / "b.txt", outer) == "inner/b.txt"
    assert display(Path("x/y.txt"), Path(".")) == "x/y.txt"
    assert display(Path("/abc/y.txt"), Path("/ab")) == "/abc/y.txt"  # not a folder prefix
