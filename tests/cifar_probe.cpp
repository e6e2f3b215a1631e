// Prints what CifarDataset reads, for test_cifar_dataset.py:
//   cifar_probe LOCATION train|test|all fine|coarse strict|lenient OUT.rgb
// prints "name", "size", "warning" and one "record" line per record (source,
// label, label name, find() of its source) and writes the RGB of every record
// to OUT.rgb. A vs::Error prints "ERROR: <message>" and exits 2.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/cifar_dataset.h"
#include "core/error.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s LOCATION SPLIT KIND STRICT OUT\n", argv[0]);
    return 64;
  }
  const std::string split = argv[2];
  vs::CifarOptions options;
  options.split = split == "test" ? vs::CifarSplit::Test
                  : split == "all" ? vs::CifarSplit::All
                                   : vs::CifarSplit::Train;
  options.label_kind = std::string(argv[3]) == "coarse" ? vs::CifarLabelKind::Coarse
                                                        : vs::CifarLabelKind::Fine;
  options.strict = std::string(argv[4]) == "strict";
  try {
    vs::CifarDataset ds = vs::CifarDataset::open(argv[1], options);
    std::printf("name\t%s\nsize\t%zu\n", ds.name().c_str(), ds.size());
    for (const std::string& w : ds.warnings()) std::printf("warning\t%s\n", w.c_str());
    std::ofstream out(argv[5], std::ios::binary | std::ios::trunc);
    std::vector<uint8_t> rgb(vs::CifarDataset::kImageBytes);
    for (size_t i = 0; i < ds.size(); ++i) {
      std::string dataset;
      vs::CifarSplit s;
      int64_t index = -1;
      const std::string source = ds.source(i);
      bool parsed = vs::parse_cifar_source(source, &dataset, &s, &index);
      std::printf("record\t%s\t%d\t%s\t%lld\n", source.c_str(), ds.label(i),
                  ds.label_name(ds.label(i)).c_str(),
                  parsed ? static_cast<long long>(ds.find(s, index)) : -2LL);
      ds.rgb(i, rgb.data());
      out.write(reinterpret_cast<const char*>(rgb.data()), std::streamsize(rgb.size()));
    }
  } catch (const vs::Error& e) {
    std::printf("ERROR: %s\n", e.what());
    return 2;
  }
  return 0;
}
