"""fuzz_corpus_test: a fuzz target's corpus as a regression test in the normal (gcc) build."""

def fuzz_corpus_test(name, deps, tags = []):
    """`<name>_corpus_test` runs `<name>_fuzzer.cc` once on every file in corpus/<name>/.

    No libFuzzer here: corpus_replay_main.cc calls LLVMFuzzerTestOneInput on each
    file, so a property violation (__builtin_trap) or crash fails the test.

    Args:
      name: the fuzz target's name (tests/fuzz/<name>_fuzzer.cc, corpus/<name>/).
      deps: the libraries under test.
      tags: passed on to the cc_test.
    """
    native.cc_test(
        name = name + "_corpus_test",
        size = "small",
        srcs = [
            name + "_fuzzer.cc",
            "corpus_replay_main.cc",
        ],
        # The runfiles tree is the working directory: this is the corpus there.
        args = ["tests/fuzz/corpus/" + name],
        data = native.glob(["corpus/%s/**" % name]),
        deps = [":fuzz_check"] + deps,
        tags = tags,
    )
