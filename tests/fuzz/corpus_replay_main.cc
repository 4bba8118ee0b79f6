// A main for fuzz targets built without libFuzzer (gcc, the normal Bazel
// test suite): runs LLVMFuzzerTestOneInput once on every file named on the
// command line, descending into directories, in a stable (sorted) order.
//
// Fails when no input was found, so a corpus that went missing from `data`
// cannot pass silently. A property violation traps inside the target (see
// fuzz_check.h), which fails the test with the offending file's name printed
// just before.
//
//   bazel-bin/tests/fuzz/address_corpus_test tests/fuzz/crashes/address/crash-...
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

bool Collect(const fs::path& path, std::vector<fs::path>* files) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (fs::recursive_directory_iterator
             it(path, fs::directory_options::follow_directory_symlink, ec),
         end;
         !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file(ec)) files->push_back(it->path());
    }
  } else if (fs::is_regular_file(path, ec)) {
    files->push_back(path);
  } else {
    std::fprintf(stderr, "corpus_replay: %s: not a file or directory\n", path.c_str());
    return false;
  }
  if (ec) {
    std::fprintf(stderr, "corpus_replay: %s: %s\n", path.c_str(), ec.message().c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    if (!Collect(argv[i], &files)) return 1;
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "corpus_replay: no inputs found\n");
    return 1;
  }
  for (const fs::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "corpus_replay: cannot read %s\n", file.c_str());
      return 1;
    }
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "corpus_replay: %s (%zu bytes)\n", file.c_str(), bytes.size());
    std::fflush(stderr);
    // A copy exactly as large as the input, so an overread is an overread.
    std::vector<uint8_t> data(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(data.data(), data.size());
  }
  std::printf("corpus_replay: %zu inputs replayed, all properties held\n", files.size());
  return 0;
}
