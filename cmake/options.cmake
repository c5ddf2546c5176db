# The C++ view of the options schema (js/options.mjs): a header generated at build time by
# scripts/options-header.mjs into <build>/generated/rwkv_options.h. rwkv_options_header(T)
# makes target T depend on it and see it.
find_program(RWKV_NODE NAMES node nodejs REQUIRED)
get_filename_component(RWKV_OPTIONS_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(RWKV_OPTIONS_HEADER "${CMAKE_BINARY_DIR}/generated/rwkv_options.h")
add_custom_command(
  OUTPUT "${RWKV_OPTIONS_HEADER}"
  COMMAND "${RWKV_NODE}" "${RWKV_OPTIONS_ROOT}/scripts/options-header.mjs" "${RWKV_OPTIONS_HEADER}"
  DEPENDS "${RWKV_OPTIONS_ROOT}/js/options.mjs" "${RWKV_OPTIONS_ROOT}/scripts/options-header.mjs"
  COMMENT "options schema -> generated/rwkv_options.h"
  VERBATIM)
add_custom_target(rwkv_options_header DEPENDS "${RWKV_OPTIONS_HEADER}")

function(rwkv_options_header target)
  add_dependencies(${target} rwkv_options_header)
  target_include_directories(${target} PUBLIC "${CMAKE_BINARY_DIR}/generated")
endfunction()
