// Build tool: writes the code examples of documentation files into one C++ source, so that the
// build compiles them (cmake/StreamrunDocExamples.cmake).
//   - ```cpp blocks of Markdown files;
//   - in headers, the indented comment block ("//   code") after a comment line that contains
//     "Example".
// Each block becomes a function; its #include lines move to the top.
//
//   extract_doc_examples OUTPUT FILE...

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Block {
  std::string origin;
  std::string code;
};

void extract(const std::string& path, std::vector<Block>& blocks, std::string& includes) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("cannot read " + path);
  const bool markdown = path.ends_with(".md");
  std::string line;
  bool armed = false;
  bool inside = false;
  int number = 0;
  Block block;
  auto finish = [&] {
    blocks.push_back(block);
    block = {};
    inside = false;
    armed = false;
  };
  auto take = [&](const std::string& code) {
    if (code.starts_with("#include"))
      includes += code + "\n";
    else
      block.code += code + "\n";
  };
  while (std::getline(in, line)) {
    ++number;
    if (markdown) {
      if (!inside && line.starts_with("```cpp")) {
        inside = true;
        block.origin = path + ":" + std::to_string(number);
      } else if (inside && line.starts_with("```")) {
        finish();
      } else if (inside) {
        take(line);
      }
      continue;
    }
    const bool indented = line.starts_with("//   ");
    if (!inside && line.starts_with("//") && line.find("Example") != std::string::npos) {
      armed = true;
    } else if (armed && !inside && indented) {
      inside = true;
      block.origin = path + ":" + std::to_string(number);
    }
    if (inside && !indented) {
      finish();
    } else if (inside) {
      take(line.substr(5));
    }
  }
  if (inside)
    finish();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: extract_doc_examples OUTPUT FILE...\n";
    return 2;
  }
  try {
    std::vector<Block> blocks;
    std::string includes;
    for (int i = 2; i < argc; ++i)
      extract(argv[i], blocks, includes);
    std::ostringstream out;
    out << "// Generated from the documentation by extract_doc_examples: do not edit.\n"
        << includes << "\nnamespace streamrun {\nnamespace {\n\n";
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      out << "// " << blocks[i].origin << "\n[[maybe_unused]] void example_" << i << "() {\n"
          << blocks[i].code << "}\n\n";
    }
    out << "}  // namespace\n}  // namespace streamrun\n";
    std::ofstream(argv[1]) << out.str();
  } catch (const std::exception& e) {
    std::cerr << "extract_doc_examples: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
