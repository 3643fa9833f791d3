// The root metadata of model files and checkpoints (see file_meta.h).
#include "io/file_meta.h"

#include "core/error.h"
#include "core/version.h"
#include "io/hdf5.h"

namespace llmpi {
namespace {

// Version 1: root attribute layout = {tp, pp, dp, zero_stage, world_size}.
Layout read_layout_v1(hid_t file, const std::string& path) {
  const std::vector<int64_t> v = h5::read_attr_ints(file, "layout", path);
  if (v.size() != 5) user_error(path, ": attribute 'layout' should hold 5 integers");
  Layout l;
  const char* names[4] = {"tp", "pp", "dp", "zero_stage"};
  for (int i = 0; i < 4; ++i)
    if (!l.set(names[i], v[size_t(i)]))
      user_error(path, ": attribute 'layout' holds ", names[i], " = ", v[size_t(i)]);
  l.virtual_stages = 0;  // not recorded before format_version 2
  l.micro_batches = 0;
  if (v[4] != l.world_size())
    user_error(path, ": attribute 'layout' says world size ", v[4], " for tp × pp × dp = ",
               l.world_size());
  return l;
}

Layout read_layout(hid_t file, const std::string& path) {
  if (!h5::exists(file, "layout")) user_error(path, ": the group /layout is missing");
  h5::Id g = h5::open_group(file, "layout", path);
  Layout l;
  int64_t world = 0;
  for (const Layout::Field& f : Layout{}.fields()) {
    const std::string name(f.name);
    if (!h5::has_attr(g, name)) user_error(path, ": /layout has no attribute '", name, "'");
    const int64_t v = h5::read_attr_int(g, name, path);
    if (name == "world_size")
      world = v;
    else if (!l.set(name, v))
      user_error(path, ": /layout attribute '", name, "' = ", v, " is out of range");
  }
  if (l.tp < 1 || l.pp < 1 || l.dp < 1 || l.zero_stage < 0 || l.zero_stage > 3 ||
      l.virtual_stages < 1 || l.micro_batches < 1)
    user_error(path, ": /layout holds degrees out of range (", describe_layout(l), ")");
  if (world != l.world_size())
    user_error(path, ": /layout attribute 'world_size' = ", world, ", but tp × pp × dp = ",
               l.world_size());
  return l;
}

}  // namespace

void write_file_meta(hid_t file, const ModelFileMeta& m, double created_unix,
                     const std::string& path) {
  h5::write_attr(file, "format", std::string("llmpi"), path);
  h5::write_attr(file, "format_version", kFormatVersion, path);
  h5::write_attr(file, "kind", m.kind, path);
  h5::write_attr(file, "llmpi_version", std::string(kVersion), path);
  h5::write_attr(file, "git_revision", std::string(kGitRevision), path);
  h5::write_attr(file, "step", m.step, path);
  h5::write_attr(file, "tokens_seen", m.tokens_seen, path);
  h5::write_attr(file, "config", m.config_toml, path);
  h5::write_attr(file, "created_unix", created_unix, path);
  if (!m.tokenizer.empty()) h5::write_attr(file, "tokenizer", m.tokenizer, path);
  if (!m.writer.empty()) h5::write_attr(file, "writer", m.writer, path);
  if (!m.lora_base.empty()) {
    h5::write_attr(file, "lora_base", m.lora_base, path);
    h5::write_attr(file, "lora_base_checksum", m.lora_base_checksum, path);
  }
  h5::Id layout = h5::create_group(file, "layout", path);
  for (const Layout::Field& f : m.layout.fields())
    h5::write_attr(layout, std::string(f.name), f.value, path);
}

ModelFileMeta read_file_meta(hid_t file, const std::string& path) {
  if (!h5::has_attr(file, "format") || h5::read_attr_string(file, "format", path) != "llmpi")
    user_error(path, ": not an llmpi model or checkpoint file (no format=\"llmpi\" attribute)");
  ModelFileMeta m;
  m.format_version = h5::read_attr_int(file, "format_version", path);
  if (m.format_version < 1 || m.format_version > kFormatVersion)
    user_error(path, ": format_version ", m.format_version, " is not supported (this llmpi reads 1..",
               kFormatVersion, ")");
  m.kind = h5::read_attr_string(file, "kind", path);
  if (m.kind != "model" && m.kind != "checkpoint")
    user_error(path, ": attribute 'kind' is \"", m.kind, "\"; expected \"model\" or \"checkpoint\"");
  m.llmpi_version = h5::read_attr_string(file, "llmpi_version", path);
  m.git_revision = h5::read_attr_string(file, "git_revision", path);
  m.step = h5::read_attr_int(file, "step", path);
  m.tokens_seen = h5::read_attr_int(file, "tokens_seen", path);
  m.config_toml = h5::read_attr_string(file, "config", path);
  m.created_unix = h5::read_attr_double(file, "created_unix", path);
  if (h5::has_attr(file, "tokenizer")) m.tokenizer = h5::read_attr_string(file, "tokenizer", path);
  if (h5::has_attr(file, "writer")) m.writer = h5::read_attr_string(file, "writer", path);
  if (h5::has_attr(file, "lora_base")) {
    m.lora_base = h5::read_attr_string(file, "lora_base", path);
    m.lora_base_checksum = h5::read_attr_uint(file, "lora_base_checksum", path);
  }
  if (m.step < 0 || m.tokens_seen < 0) user_error(path, ": negative step or tokens_seen");
  m.layout = m.format_version == 1 ? read_layout_v1(file, path) : read_layout(file, path);
  return m;
}

std::string describe_layout(const Layout& l) {
  std::string s = detail::concat("tp=", l.tp, " pp=", l.pp, " dp=", l.dp, " zero_stage=",
                                 l.zero_stage, " world=", l.world_size());
  if (l.virtual_stages > 0)
    s += detail::concat(" virtual_stages=", l.virtual_stages, " micro_batches=", l.micro_batches,
                        " sequence_parallel=", l.sequence_parallel ? "true" : "false");
  return s;
}

}  // namespace llmpi
