"""chunk_plan: content-defined chunk boundaries, which a file added or removed moves little."""
import random
from pathlib import Path

from pipeline.chunk_plan import HIGH, LOW, ends_chunk, plan_chunks, stem_draw

CHUNK = 200_000


def _files(folder, sizes: dict[str, int]):  # noqa: ANN001, ANN202
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, size in sizes.items():
        path = folder / name
        with open(path, "wb") as fh:
            fh.truncate(size)  # sparse: only the size matters here
        paths.append(path)
    return paths


def _plan(paths, chunk_bytes: int = CHUNK) -> list[tuple[str, ...]]:  # noqa: ANN001
    tasks = plan_chunks(paths, [p.name for p in paths], chunk_bytes=chunk_bytes)
    return [tuple(shown for _, _, shown in t.files) for t in tasks]


def _corpus(rng: random.Random, n: int) -> dict[str, int]:
    return {f"int{k:04d}.txt": rng.randint(2_000, 40_000) for k in range(n)}


def test_chunks_hold_about_chunk_bytes_and_never_much_more(tmp_path):
    sizes = _corpus(random.Random(3), 2_000)
    chunks = _plan(_files(tmp_path, sizes))
    held = [sum(sizes[name] for name in chunk) for chunk in chunks]
    assert sorted(name for chunk in chunks for name in chunk) == sorted(sizes)
    assert 0.75 * CHUNK < sum(held) / len(held) < 1.25 * CHUNK
    assert min(held[:-1]) >= LOW * CHUNK
    assert max(held) < HIGH * CHUNK + max(sizes.values())


def test_a_file_added_or_removed_changes_the_chunks_around_it_only(tmp_path):
    rng = random.Random(5)
    sizes = _corpus(rng, 600)
    before = set(_plan(_files(tmp_path / "a", sizes)))
    assert len(before) > 30
    for k in (3, 150, 420):
        grown = {**sizes, f"int{k:04d}b.txt": 25_000}  # sorts right after int{k}
        after = set(_plan(_files(tmp_path / f"add{k}", grown)))
        assert len(after - before) <= 3, k
        shrunk = {name: size for name, size in sizes.items() if name != f"int{k:04d}.txt"}
        after = set(_plan(_files(tmp_path / f"del{k}", shrunk)))
        assert len(after - before) <= 3, k
    # a file that grows changes its own chunk, and at most the next ones until they meet
    edited = {**sizes, "int0010.txt": sizes["int0010.txt"] + 3_000}
    assert len(set(_plan(_files(tmp_path / "edit", edited))) - before) <= 3


def test_the_decision_depends_on_the_stem_its_size_and_what_the_chunk_holds():
    assert stem_draw("int01") == stem_draw("int01") and 0 <= stem_draw("int01") < 1
    assert len({round(stem_draw(f"s{k}"), 6) for k in range(100)}) == 100
    low, high = int(LOW * CHUNK), int(HIGH * CHUNK)
    assert not ends_chunk("any", 10**9, low - 1, CHUNK)  # too little held: never
    assert ends_chunk("any", 1, high, CHUNK)  # too much: always
    assert ends_chunk("any", CHUNK, low, CHUNK)  # a stem as large as a chunk: at once
    draws = [ends_chunk(f"s{k}", 10_000, CHUNK, CHUNK) for k in range(2_000)]
    assert 0.05 < sum(draws) / len(draws) < 0.11  # 10,000 / 125,000 of the stems


def test_one_stem_per_chunk_or_one_chunk(tmp_path):
    paths = _files(tmp_path, {"a.txt": 10, "b.txt": 10, "b.csv": 10, "c.txt": 10})
    assert _plan(paths, chunk_bytes=1) == [("a.txt",), ("b.csv", "b.txt"), ("c.txt",)]
    assert _plan(paths, chunk_bytes=1 << 30) == [("a.txt", "b.csv", "b.txt", "c.txt")]


def test_a_file_added_early_leaves_the_later_chunks_cached(tmp_path):
    import filecmp

    from pipeline.runner import RunOptions, code_corpus

    raw = tmp_path / "raw"
    raw.mkdir()
    rng = random.Random(2)
    words = "we mochten zelf kiezen de directie besliste samen leren school team tijd".split()
    for k in range(24):
        turns = [f"R: {' '.join(rng.choice(words) for _ in range(30))}." for _ in range(4)]
        (raw / f"int{k:02d}.txt").write_text("I: Vertel eens.\n" + "\n".join(turns) + "\n",
                                             encoding="utf-8")
        if k % 3 == 2:  # error rows all along, in cached chunks and in parsed ones
            (raw / f"int{k:02d}b.txt").write_text("", encoding="utf-8")
    book = tmp_path / "codebook.yaml"
    book.write_text((Path(__file__).resolve().parents[1] / "codebook.yaml").read_text(
        encoding="utf-8"), encoding="utf-8")

    def run(out, cache=True):  # noqa: ANN001, ANN202
        return code_corpus([raw], codebook=book, out_dir=out,
                           options=RunOptions(progress=False, cache=cache, chunk_bytes=1_500))

    cached = tmp_path / "cached"
    first = run(cached)
    assert first.manifest["throughput"]["chunks"] >= 4
    (raw / "int00a.txt").write_text("I: Nieuw.\nR: We mochten zelf kiezen.\n", encoding="utf-8")
    again = run(cached)
    hits = again.manifest["throughput"]["cache_hits"]
    assert hits >= 10  # the chunks after the new file are taken from the cache
    fresh = tmp_path / "fresh"
    for step in range(2):
        run(fresh, cache=False)
        for name in ("codings.csv", "segments.csv", "errors.csv"):
            assert filecmp.cmp(cached / name, fresh / name, shallow=False), (step, name)
        assert (fresh / "errors.csv").read_text(encoding="utf-8").count("\n") == 9  # 8 files
        if step == 0:
            # six files removed early: the cached chunks' error rows move back six places,
            # behind the rows of a chunk parsed again later on (a file edited)
            for name in ("int00a.txt", "int01.txt", "int03.txt", "int04.txt", "int06.txt",
                         "int07.txt"):
                (raw / name).unlink()
            with open(raw / "int20.txt", "a", encoding="utf-8") as fh:
                fh.write("R: Nog iets.\n")
            again = run(cached)
            assert again.manifest["throughput"]["cache_hits"] >= 10


def test_a_docx_is_split_by_its_text_not_its_compressed_size(tmp_path):
    import docx

    from pipeline.memory_need import text_bytes

    document = docx.Document()
    for k in range(1_000):
        document.add_paragraph(f"R: We hebben geen tijd en geen uren voor dit werk ({k}).")
    path = tmp_path / "long.docx"
    document.save(path)
    size, text = path.stat().st_size, text_bytes(path)
    assert size < 60_000 < text  # compressed on disk
    tasks = plan_chunks([path], [path.name], chunk_bytes=CHUNK, part_bytes=60_000)
    n = -(-text // 60_000)
    assert n > 1 and [t.part for t in tasks] == [(k, n) for k in range(n)]
