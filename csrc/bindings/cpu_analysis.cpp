// Bindings of the analysis kernels: `filter_classifications` and `group_cells`. Python
// (nearzero/analysis/filtering.py and grouping.py) calls them only for the dtypes they take and
// keeps its NumPy code for the rest; this file re-checks what memory safety depends on (shapes,
// dtypes, item sizes) and releases the GIL.
#include "bindings/cpu_bindings.h"
#include "cpu/analysis_cpu.h"

#include <pybind11/numpy.h>

#include <stdexcept>
#include <string>
#include <type_traits>

namespace py = pybind11;

namespace nearzero {
namespace {

constexpr int64_t kDigitTableSize = 128 * 128;

// (terms, cells) planes of a 2-d array whose first axis has `n_terms` entries, at any strides.
template <typename T> TermPlanes<T> planes_of(const py::array &a, int n_terms, const char *what) {
  if (a.ndim() != 2 || a.shape(0) != n_terms || a.itemsize() != py::ssize_t(sizeof(T)))
    throw std::invalid_argument(std::string("nearzero: ") + what +
                                " must be (terms, cells) planes of the expected dtype");
  return {static_cast<const char *>(a.data()), int64_t(a.strides(0)), int64_t(a.strides(1))};
}

template <int N, typename Count, typename Sum>
py::tuple filter_typed(const py::array &counts, const py::array &sums, const py::array &names,
                       double completeness) {
  using Name = std::conditional_t<N == 9, uint64_t, uint32_t>;  // 2 or 1 UCS4 characters
  if (!sums.dtype().is(py::dtype::of<Sum>()) || sums.ndim() != 2 ||
      sums.shape(1) != counts.shape(1))
    throw std::invalid_argument("nearzero: sums must match counts");
  if (names.dtype().kind() != 'U' || names.itemsize() != py::ssize_t(sizeof(Name)) ||
      names.ndim() != 1 || !(names.flags() & py::array::c_style))
    throw std::invalid_argument("nearzero: term names must be a contiguous array of names");
  const auto in_counts = planes_of<Count>(counts, N, "counts");
  const auto in_sums = planes_of<Sum>(sums, N, "sums");
  Name term_names[N];
  std::memcpy(term_names, names.data(), sizeof(term_names));
  const int64_t cells = counts.shape(1);
  py::array_t<Count> kept_counts({int64_t(N), cells});
  py::array_t<Sum> kept_sums({int64_t(N), cells});
  py::array kept_names(names.dtype(), {int64_t(N), cells});
  const FilteredPlanes<Count, Sum, Name> out{kept_counts.mutable_data(), kept_sums.mutable_data(),
                                             static_cast<Name *>(kept_names.mutable_data())};
  {
    py::gil_scoped_release release;
    filter_classifications_cpu<N>(in_counts, in_sums, cells, completeness, term_names, out);
  }
  return py::make_tuple(kept_counts, kept_sums, kept_names);
}

template <int N, typename Count>
py::tuple filter_for_sums(const py::array &counts, const py::array &sums, const py::array &names,
                          double completeness) {
  if (sums.dtype().is(py::dtype::of<double>()))
    return filter_typed<N, Count, double>(counts, sums, names, completeness);
  return filter_typed<N, Count, float>(counts, sums, names, completeness);
}

template <int N>
py::tuple filter_for_counts(const py::array &counts, const py::array &sums,
                            const py::array &names, double completeness) {
  if (counts.dtype().is(py::dtype::of<int64_t>()))
    return filter_for_sums<N, int64_t>(counts, sums, names, completeness);
  if (counts.dtype().is(py::dtype::of<int32_t>()))
    return filter_for_sums<N, int32_t>(counts, sums, names, completeness);
  throw std::invalid_argument("nearzero: counts must be int32 or int64");
}

// Kept counts, kept sums and the name of each position's term, as contiguous (terms, cells)
// planes; counts and sums are (terms, cells) planes at any strides.
py::tuple filter_classifications(const py::array &counts, const py::array &sums,
                                 const py::array &names, double completeness) {
  if (names.size() == 9) return filter_for_counts<9>(counts, sums, names, completeness);
  if (names.size() == 3) return filter_for_counts<3>(counts, sums, names, completeness);
  throw std::invalid_argument("nearzero: filtering takes 3 or 9 terms");
}

template <typename Count>
int pattern_keys(const py::array &counts, const py::object &names, int n_terms, int64_t cells,
                 const int8_t *digit_table, const uint8_t *mask, int64_t *keys) {
  const auto count_planes = planes_of<Count>(counts, n_terms, "counts");
  if (names.is_none()) {
    py::gil_scoped_release release;
    return pattern_keys_cpu<Count, 0>(count_planes, {}, n_terms, cells, digit_table, mask, keys);
  }
  const auto name_array = names.cast<py::array>();
  if (name_array.dtype().kind() != 'U' || name_array.ndim() != 2 ||
      name_array.shape(1) != cells)
    throw std::invalid_argument("nearzero: term names must match counts");
  const auto name_planes = TermPlanes<uint32_t>{static_cast<const char *>(name_array.data()),
                                                int64_t(name_array.strides(0)),
                                                int64_t(name_array.strides(1))};
  const auto chars = name_array.itemsize() / py::ssize_t(sizeof(uint32_t));
  if (name_array.shape(0) != n_terms || (chars != 1 && chars != 2))
    throw std::invalid_argument("nearzero: term names must have 1 or 2 characters");
  py::gil_scoped_release release;
  return chars == 1 ? pattern_keys_cpu<Count, 1>(count_planes, name_planes, n_terms, cells,
                                                 digit_table, mask, keys)
                    : pattern_keys_cpu<Count, 2>(count_planes, name_planes, n_terms, cells,
                                                 digit_table, mask, keys);
}

template <typename T> py::array grouped(const py::array &planes, const CellGroups &groups) {
  const int n_terms = int(planes.shape(0));
  py::array out(planes.dtype(), {int64_t(n_terms), groups.selected});
  const auto in = planes_of<T>(planes, n_terms, "planes");
  T *data = static_cast<T *>(out.mutable_data());
  py::gil_scoped_release release;
  scatter_cells_cpu<T>(in, n_terms, groups, data);
  return out;
}

py::array grouped_planes(const py::array &planes, const CellGroups &groups) {
  const char kind = planes.dtype().kind();
  if (kind != 'i' && kind != 'u' && kind != 'f')
    throw std::invalid_argument("nearzero: counts and sums must be numbers");
  if (planes.itemsize() == 8) return grouped<uint64_t>(planes, groups);
  if (planes.itemsize() == 4) return grouped<uint32_t>(planes, groups);
  throw std::invalid_argument("nearzero: counts and sums must have 4- or 8-byte items");
}

// The selected cells grouped by pattern: (grouped counts, grouped sums) as contiguous (terms,
// cells) planes group after group, each group's size and first cell; None where a term name is
// unknown or a placeholder holds a count (the caller's NumPy path then says which).
py::object group_cells(const py::array &counts, const py::array &sums, const py::object &names,
                       const py::array_t<int8_t, py::array::c_style> &digit_table,
                       const py::object &mask) {
  if (counts.ndim() != 2 || sums.ndim() != 2 || sums.shape(0) != counts.shape(0) ||
      sums.shape(1) != counts.shape(1))
    throw std::invalid_argument("nearzero: counts and sums must be matching (terms, cells) planes");
  if (digit_table.size() != kDigitTableSize)
    throw std::invalid_argument("nearzero: the digit table must have 128 * 128 entries");
  const int n_terms = int(counts.shape(0));
  if (n_terms != 3 && n_terms != 9)  // keys hold 4 bits a term and must stay non-negative
    throw std::invalid_argument("nearzero: grouping takes 3 or 9 terms");
  const int64_t cells = counts.shape(1);
  const uint8_t *selected = nullptr;
  py::array mask_array;
  if (!mask.is_none()) {
    mask_array = mask.cast<py::array>();
    if (!mask_array.dtype().is(py::dtype::of<bool>()) || mask_array.ndim() != 1 ||
        mask_array.shape(0) != cells || !(mask_array.flags() & py::array::c_style))
      throw std::invalid_argument("nearzero: mask must be a contiguous bool array, one per cell");
    selected = static_cast<const uint8_t *>(mask_array.data());
  }
  std::vector<int64_t> keys(cells);
  int problems;
  if (counts.dtype().is(py::dtype::of<int64_t>()))
    problems = pattern_keys<int64_t>(counts, names, n_terms, cells, digit_table.data(), selected,
                                     keys.data());
  else if (counts.dtype().is(py::dtype::of<int32_t>()))
    problems = pattern_keys<int32_t>(counts, names, n_terms, cells, digit_table.data(), selected,
                                     keys.data());
  else
    throw std::invalid_argument("nearzero: counts must be int32 or int64");
  if (problems != 0) return py::none();
  CellGroups groups;
  {
    py::gil_scoped_release release;
    groups = group_cells_cpu(keys.data(), selected, cells);
  }
  return py::make_tuple(grouped_planes(counts, groups), grouped_planes(sums, groups),
                        py::array_t<int64_t>(int64_t(groups.sizes.size()), groups.sizes.data()),
                        py::array_t<int64_t>(int64_t(groups.first_cells.size()),
                                             groups.first_cells.data()));
}

}  // namespace

void bind_analysis(py::module_ &m) {
  m.def("filter_classifications", &filter_classifications);
  m.def("group_cells", &group_cells);
}

}  // namespace nearzero
