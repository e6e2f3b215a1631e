// SPDX-License-Identifier: LGPL-2.1-or-later
#include "engine/model/dnnl_resnet.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <dnnl.hpp>
#include <string>
#include <unordered_map>
#include <utility>

namespace vs {
namespace {

using dnnl::algorithm;
using dnnl::memory;
using dnnl::prop_kind;
using tag = memory::format_tag;
using dt = memory::data_type;

// A convolution's weights in torch's layout and, once a primitive asked for
// it, in the blocked layout that primitive reads (reordered once, shared by
// every batch shape that wants the same layout).
struct Conv {
  DnnlConvSpec spec;
  memory bias;
  memory run_weights;
};

// Where a tensor of a plan lives: one of the workspace's buffers, or the
// caller's input or output. Buffer 0 is the scratchpad every primitive
// shares (they run one after another).
enum : int { kInput = -1, kOutput = -2, kScratchpad = 0 };
struct Tensor {
  memory::desc md;
  int slot;
};

// Everything a batch shape needs: the primitives in order and the bytes of
// each workspace buffer its activations take turns in.
struct Plan {
  struct Step {
    dnnl::primitive prim;
    std::vector<std::pair<int, Tensor>> tensors;  // args in buffers
    std::unordered_map<int, memory> args;
  };
  std::vector<Step> steps;
  std::vector<size_t> slot_bytes;
  // The args that live in workspace buffers, to point at them again when
  // the workspace grows.
  std::vector<std::pair<memory, int>> in_workspace;
  uint64_t bound_to = 0;  // the workspace generation they point into
  memory input, output;
};

}  // namespace

struct DnnlResNet::Impl {
  dt act = dt::f32;  // activations' and weights' data type
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};
  Conv stem;
  struct Block {
    std::vector<Conv> convs;
    std::optional<Conv> downsample;
  };
  std::vector<Block> blocks;
  int dims = 0;
  // The shapes seen last: an embedder runs its batch size, and shorter
  // batches at the end of a stream or when frames come slowly.
  std::vector<std::pair<std::array<int, 3>, std::unique_ptr<Plan>>> plans;
  // Buffers all plans share (one runs at a time), as large as the largest
  // plan needs: a few shapes cost the memory of one.
  std::vector<memory> workspace;
  uint64_t generation = 1;

  Plan& plan_for(int n, int h, int w);
  void bind(Plan& plan);
};

namespace {

class PlanBuilder {
 public:
  PlanBuilder(dnnl::engine& eng, dnnl::stream& stream, dt act, Plan& plan)
      : eng_(eng), stream_(stream), act_(act), plan_(plan), busy_{true} {
    plan_.slot_bytes = {0};  // kScratchpad
  }

  // Convolution + bias, then (post-ops) the identity added in place into
  // `sum_into` if given, then ReLU if asked.
  Tensor conv(const Tensor& src, Conv& c, const Tensor* sum_into, bool relu) {
    const DnnlConvSpec& s = c.spec;
    const memory::dims src_dims = src.md.dims();
    const memory::dim oh = (src_dims[2] + 2 * s.padding - s.kernel) / s.stride + 1;
    const memory::dim ow = (src_dims[3] + 2 * s.padding - s.kernel) / s.stride + 1;
    const memory::desc src_any({src_dims[0], s.in, src_dims[2], src_dims[3]}, act_, tag::any);
    const memory::desc weights_any({s.out, s.in, s.kernel, s.kernel}, act_, tag::any);
    const memory::desc dst_md =
        sum_into ? sum_into->md : memory::desc({src_dims[0], s.out, oh, ow}, act_, tag::any);
    dnnl::post_ops ops;
    if (sum_into) ops.append_sum(1.0f);
    if (relu) ops.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
    dnnl::primitive_attr attr = user_scratchpad();
    attr.set_post_ops(ops);
    const dnnl::convolution_forward::desc desc(prop_kind::forward_inference,
                                               algorithm::convolution_direct, src_any, weights_any,
                                               c.bias.get_desc(), dst_md, {s.stride, s.stride},
                                               {s.padding, s.padding}, {s.padding, s.padding});
    const dnnl::convolution_forward::primitive_desc pd(desc, attr, eng_);
    // oneDNN's reference bf16 convolution runs where the CPU has no bf16
    // kernel, orders of magnitude slower than fp32: the caller runs fp32.
    if (act_ == dt::bf16 && std::string(pd.impl_info_str()).rfind("ref", 0) == 0)
      throw DnnlResNet::Failure(
          std::string("oneDNN has no native bf16 convolution for this CPU (") + pd.impl_info_str() +
          ")");
    const Tensor in = to_layout(src, pd.src_desc());
    const Tensor out = sum_into ? *sum_into : Tensor{pd.dst_desc(), acquire(pd.dst_desc())};
    add(dnnl::convolution_forward(pd), pd.scratchpad_desc(),
        {{DNNL_ARG_SRC, in}, {DNNL_ARG_DST, out}},
        {{DNNL_ARG_WEIGHTS, weights_for(c, pd.weights_desc())}, {DNNL_ARG_BIAS, c.bias}});
    if (in.slot != src.slot) release(in);
    return out;
  }

  Tensor max_pool(const Tensor& src) {
    const memory::dims d = src.md.dims();
    const memory::desc dst_any({d[0], d[1], (d[2] - 1) / 2 + 1, (d[3] - 1) / 2 + 1}, act_,
                               tag::any);
    const dnnl::pooling_forward::desc desc(prop_kind::forward_inference, algorithm::pooling_max,
                                           src.md, dst_any, {2, 2}, {3, 3}, {1, 1}, {1, 1});
    const dnnl::pooling_forward::primitive_desc pd(desc, user_scratchpad(), eng_);
    const Tensor out{pd.dst_desc(), acquire(pd.dst_desc())};
    add(dnnl::pooling_forward(pd), pd.scratchpad_desc(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, out}},
        {});
    return out;
  }

  // Global average pool into the caller's (n, channels) float output: in the
  // activations' type (oneDNN 2.6 has no bf16-to-fp32 pooling), then a
  // reorder to fp32 where they are bf16. No exception on this path: one
  // thrown inside a process that also loaded another unwinder (Python with
  // torch) can abort it.
  void global_avg_pool(const Tensor& src) {
    const memory::dims d = src.md.dims();
    const memory::desc dst_any({d[0], d[1], 1, 1}, act_, tag::any);
    const dnnl::pooling_forward::desc desc(prop_kind::forward_inference,
                                           algorithm::pooling_avg_exclude_padding, src.md, dst_any,
                                           {1, 1}, {d[2], d[3]}, {0, 0}, {0, 0});
    const dnnl::pooling_forward::primitive_desc pd(desc, user_scratchpad(), eng_);
    const memory::desc user({d[0], d[1], 1, 1}, dt::f32, tag::nchw);
    plan_.output = memory(user, eng_, DNNL_MEMORY_NONE);
    const bool direct = pd.dst_desc() == user;
    const Tensor out =
        direct ? Tensor{user, kOutput} : Tensor{pd.dst_desc(), acquire(pd.dst_desc())};
    add(dnnl::pooling_forward(pd), pd.scratchpad_desc(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, out}},
        {});
    if (!direct) reorder(out, Tensor{user, kOutput});
  }

  // Converts `src` to layout `md` through a reorder into a new buffer, unless
  // it is in that layout already.
  Tensor to_layout(const Tensor& src, const memory::desc& md) {
    if (src.md == md) return src;
    const Tensor out{md, acquire(md)};
    reorder(src, out);
    return out;
  }

  void release(const Tensor& t) {
    if (t.slot >= 0) busy_[t.slot] = false;
  }

  // Makes each step's memory objects; those in the workspace point nowhere
  // until Impl::bind().
  void finish() {
    for (Plan::Step& step : plan_.steps)
      for (const auto& [arg, t] : step.tensors) {
        if (t.slot == kInput || t.slot == kOutput) {
          step.args.emplace(arg, t.slot == kInput ? plan_.input : plan_.output);
          continue;
        }
        memory m(t.md, eng_, DNNL_MEMORY_NONE);
        plan_.in_workspace.emplace_back(m, t.slot);
        step.args.emplace(arg, m);
      }
  }

 private:
  // A new attribute each time: copies of a primitive_attr share one object.
  static dnnl::primitive_attr user_scratchpad() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
  }

  int acquire(const memory::desc& md) {
    size_t i = 0;
    while (i < busy_.size() && busy_[i]) ++i;
    if (i == busy_.size()) {
      busy_.push_back(false);
      plan_.slot_bytes.push_back(0);
    }
    busy_[i] = true;
    plan_.slot_bytes[i] = std::max(plan_.slot_bytes[i], md.get_size());
    return static_cast<int>(i);
  }

  void add(dnnl::primitive prim, const memory::desc& scratchpad,
           std::vector<std::pair<int, Tensor>> tensors, std::unordered_map<int, memory> fixed) {
    if (scratchpad.get_size() > 0) {
      tensors.emplace_back(DNNL_ARG_SCRATCHPAD, Tensor{scratchpad, kScratchpad});
      plan_.slot_bytes[kScratchpad] =
          std::max(plan_.slot_bytes[kScratchpad], scratchpad.get_size());
    }
    plan_.steps.push_back({std::move(prim), std::move(tensors), std::move(fixed)});
  }

  void reorder(const Tensor& src, const Tensor& dst) {
    const dnnl::reorder::primitive_desc pd(eng_, src.md, eng_, dst.md, user_scratchpad());
    add(dnnl::reorder(pd), pd.scratchpad_desc(), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}}, {});
  }

  memory weights_for(Conv& c, const memory::desc& md) {
    if (c.run_weights && c.run_weights.get_desc() == md) return c.run_weights;
    const DnnlConvSpec& s = c.spec;
    memory plain({{s.out, s.in, s.kernel, s.kernel}, dt::f32, tag::oihw}, eng_,
                 const_cast<float*>(s.weight));
    memory blocked(md, eng_);  // the reorder converts to bf16 where md asks
    dnnl::reorder(plain, blocked).execute(stream_, plain, blocked);
    stream_.wait();
    c.run_weights = blocked;
    return blocked;
  }

  dnnl::engine& eng_;
  dnnl::stream& stream_;
  dt act_;
  Plan& plan_;
  std::vector<bool> busy_;
};

template <typename F>
auto translate(const char* what, F&& f) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    throw DnnlResNet::Failure(std::string("oneDNN could not ") + what + ": " + e.what());
  } catch (const std::bad_alloc&) {
    throw DnnlResNet::Failure(std::string("oneDNN could not ") + what + ": out of memory");
  }
}

}  // namespace

void DnnlResNet::Impl::bind(Plan& plan) {
  for (size_t i = 0; i < plan.slot_bytes.size(); ++i) {
    if (i < workspace.size() && workspace[i].get_desc().get_size() >= plan.slot_bytes[i]) continue;
    if (i >= workspace.size()) workspace.resize(i + 1);
    workspace[i] = memory();  // the old buffer goes before the new one comes
    workspace[i] = memory(memory::desc({memory::dim(plan.slot_bytes[i])}, dt::u8, tag::x), eng);
    ++generation;
  }
  if (plan.bound_to == generation) return;
  for (auto& [m, slot] : plan.in_workspace) m.set_data_handle(workspace[slot].get_data_handle());
  plan.bound_to = generation;
}

Plan& DnnlResNet::Impl::plan_for(int n, int h, int w) {
  const std::array<int, 3> key{n, h, w};
  for (auto& [shape, plan] : plans)
    if (shape == key) return *plan;
  auto plan = std::make_unique<Plan>();
  PlanBuilder b(eng, stream, act, *plan);
  const memory::desc user({n, 3, h, w}, dt::f32, tag::nchw);
  plan->input = memory(user, eng, DNNL_MEMORY_NONE);
  Tensor x = b.conv(Tensor{user, kInput}, stem, nullptr, true);
  const Tensor pooled = b.max_pool(x);
  b.release(x);
  x = pooled;
  for (Block& block : blocks) {
    // The identity's buffer receives the block's output: the last
    // convolution adds into it.
    const Tensor identity = block.downsample ? b.conv(x, *block.downsample, nullptr, false) : x;
    Tensor t = x;
    for (size_t i = 0; i + 1 < block.convs.size(); ++i) {
      const Tensor next = b.conv(t, block.convs[i], nullptr, true);
      if (t.slot != x.slot) b.release(t);
      t = next;
    }
    // The sum post-op needs the identity in the layout the convolution
    // writes; oneDNN keeps one blocked layout throughout, so this is no copy.
    b.conv(t, block.convs.back(), &identity, true);
    b.release(t);
    if (identity.slot != x.slot) b.release(x);
    x = identity;
  }
  b.global_avg_pool(x);
  b.finish();
  if (plans.size() == 8) plans.erase(plans.begin());
  plans.emplace_back(key, std::move(plan));
  return *plans.back().second;
}

DnnlResNet::DnnlResNet(const DnnlConvSpec& stem, std::vector<DnnlBlockSpec> blocks,
                       Arithmetic arithmetic) {
  translate("start", [&] {
    impl_ = std::make_unique<Impl>();
    impl_->act = arithmetic == Arithmetic::BF16 ? dt::bf16 : dt::f32;
    auto conv = [&](const DnnlConvSpec& s) {
      return Conv{s, memory({{s.out}, dt::f32, tag::x}, impl_->eng, const_cast<float*>(s.bias)),
                  memory()};
    };
    impl_->stem = conv(stem);
    for (const DnnlBlockSpec& spec : blocks) {
      Impl::Block block;
      for (const DnnlConvSpec& s : spec.convs) block.convs.push_back(conv(s));
      if (spec.downsample) block.downsample = conv(*spec.downsample);
      impl_->dims = spec.convs.back().out;
      impl_->blocks.push_back(std::move(block));
    }
  });
}

DnnlResNet::~DnnlResNet() = default;

int DnnlResNet::dims() const { return impl_->dims; }

void DnnlResNet::prepare(int n, int h, int w) {
  translate("create its primitives", [&] { impl_->plan_for(n, h, w); });
}

void DnnlResNet::forward(const float* nchw, int n, int h, int w, float* out) {
  translate("run", [&] {
    Plan& plan = impl_->plan_for(n, h, w);
    impl_->bind(plan);
    plan.input.set_data_handle(const_cast<float*>(nchw));
    plan.output.set_data_handle(out);
    for (Plan::Step& step : plan.steps) step.prim.execute(impl_->stream, step.args);
    impl_->stream.wait();
  });
}

}  // namespace vs
