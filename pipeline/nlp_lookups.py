"""The lemma lookup tables of ``nlp.make_nlp``'s lemmatizer, built lazily (start-up time).

``lookup_tables`` is registered as a spaCy ``misc`` function; ``make_nlp`` names it in
its lemmatizer's ``initialize`` config. The tables' contents are spacy-lookups-data's:
only when their hashed entries are made differs (``LazyTable``). In the pipeline
fingerprint's sources (``cache.FINGERPRINT_SOURCES``) like ``nlp.py``.
"""
from __future__ import annotations

from collections import OrderedDict

from spacy.lookups import Lookups, Table
from spacy.util import registry

LOOKUPS_LOADER = "qcode.lookup_tables.v1"


@registry.misc(LOOKUPS_LOADER)
def lookup_tables(lang: str) -> Lookups:
    """The tables the lookup lemmatizer of ``lang`` loads when given none, built faster.

    ``Lemmatizer.initialize`` without tables calls ``spacy.lookups.load_lookups`` for
    its required and then its optional tables; this builds the same ``Lookups``: the
    same tables, keys (string hashes), values, order and Bloom filters, made by
    ``LazyTable`` only when something other than the lemmatizer reads them.

    Args:
        lang: a language code in ``SUPPORTED_LANGUAGES``.
    """
    from spacy.lookups import load_lookups
    from spacy.pipeline.lemmatizer import Lemmatizer
    from spacy.util import load_language_data

    required, optional = Lemmatizer.get_lookups_config("lookup")
    data = registry.lookups.get(lang) if lang in registry.lookups else {}
    if optional or any(name not in data for name in required):
        # not the case sped up here: what the lemmatizer does (and raises) itself
        lookups = load_lookups(lang=lang, tables=required)
        extra = load_lookups(lang=lang, tables=optional, strict=False)
        for name in extra.tables:
            lookups.set_table(name, extra.get_table(name))
        return lookups
    lookups = Lookups()
    for name in required:  # Lookups.add_table(name, data) stores Table(name, data)
        lookups.set_table(name, LazyTable(name, load_language_data(data[name])))
    return lookups


class LazyTable(Table):
    """``Table(name=name, data=data)`` whose hashed entries are made on first use but ``get(str)``.

    The lookup lemmatizer only calls ``table.get(token.text, token.text)``. As no two
    keys of a table share a string id (``get_string_id``; ``tests/test_nlp.py`` checks
    the installed tables), ``get`` of a string is answered from ``data`` itself; any
    other use (other keys, ``in``, iteration, ``bloom``, serialising, changes) first
    fills the table as ``Table(name, data)`` would (same keys, order, values, Bloom
    filter). Filling ~200k Dutch entries (about 0.2 s, in the fork server before any
    worker can start) is then never done.
    """

    def __init__(self, name: str | None = None, data: dict | None = None) -> None:
        self._strings: dict | None = None
        Table.__init__(self, name=name)  # Table(name); data, if given, is filled lazily
        self._strings = data

    def _fill(self) -> Table:
        data, self._strings = self._strings, None
        if data is not None:  # what Table(name, data) does, in one loop
            from preshed.bloom import BloomFilter
            from spacy.strings import get_string_id

            bloom = self.__dict__["bloom"] = BloomFilter.from_error_rate(max(len(data), 1))
            put, add = OrderedDict.__setitem__, bloom.add
            for key, value in data.items():
                key = get_string_id(key)
                put(self, key, value)
                add(key)
        return self

    @property
    def bloom(self):  # noqa: ANN201 - preshed.bloom.BloomFilter
        """The table's Bloom filter (the table is filled first)."""
        return self._fill().__dict__["bloom"]

    @bloom.setter
    def bloom(self, value) -> None:  # noqa: ANN001
        self._fill().__dict__["bloom"] = value

    def get(self, key: str | int, default: object = None) -> object:
        """``Table.get``; a string key is looked up without filling the table."""
        strings = self._strings
        if strings is not None and isinstance(key, str):
            return strings.get(key, default)
        return Table.get(self._fill(), key, default)


def _filling(name: str):  # noqa: ANN202
    method = getattr(Table, name)

    def call(self: LazyTable, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        args = tuple(a._fill() if isinstance(a, LazyTable) else a for a in args)
        return method(self._fill(), *args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


for _name in ("__getitem__", "__setitem__", "__delitem__", "__contains__", "__iter__",
              "__reversed__", "__len__", "__eq__", "__ne__", "__repr__", "__reduce__",
              "__sizeof__", "__or__", "__ror__", "__ior__", "__copy__", "keys", "values",
              "items", "pop", "popitem", "setdefault", "update", "clear", "copy",
              "move_to_end", "to_bytes", "from_bytes", "set"):
    if hasattr(Table, _name):
        setattr(LazyTable, _name, _filling(_name))
