// env_file_dump FILE: what ReadEnvFile (settings.h) makes of FILE, for the
// installer's test (deploy/install_test.py), which feeds the installer's bash
// parser the same files and checks the two agree. Prints KEY NUL VALUE NUL per
// pair in key order; on a refused file, the status on stderr and exit 1.
#include <iostream>

#include "common/config/settings.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: env_file_dump FILE\n";
    return 2;
  }
  auto values = pocketmail::config::ReadEnvFile(argv[1]);
  if (!values.ok()) {
    std::cerr << values.status().message() << "\n";
    return 1;
  }
  for (const auto& [key, value] : *values) {
    std::cout << key << '\0' << value << '\0';
  }
  return std::cout.good() ? 0 : 1;
}
