# SatOnnxProto.cmake - the C code of ONNX's protobuf schema, generated at build time by
# protoc-c from the onnx.proto that Debian's libonnx-dev installs (SAT_ONNX_PROTO points
# elsewhere). The ONNX reader and writer (lib/onnx/) use the generated types; nothing
# of it is public, and its symbols stay hidden in libsat.so.
#
# Defines the object library sat_onnx_proto, whose include directory holds onnx.pb-c.h.
set(SAT_ONNX_PROTO /usr/include/onnx/onnx.proto CACHE FILEPATH
  "onnx.proto to generate the ONNX reader and writer from (Debian: libonnx-dev)")
if(NOT EXISTS "${SAT_ONNX_PROTO}")
  message(FATAL_ERROR "onnx.proto not found at ${SAT_ONNX_PROTO}: install libonnx-dev "
    "(bash cmake/install-deps.sh) or set -DSAT_ONNX_PROTO=<path>")
endif()
if(NOT ProtobufC_PROTOC_EXECUTABLE)
  message(FATAL_ERROR "protoc-c not found: install protobuf-c-compiler (bash cmake/install-deps.sh)")
endif()

set(_sat_onnx_gen ${PROJECT_BINARY_DIR}/onnx-proto)
get_filename_component(_sat_onnx_dir "${SAT_ONNX_PROTO}" DIRECTORY)
get_filename_component(_sat_onnx_name "${SAT_ONNX_PROTO}" NAME_WE)
file(MAKE_DIRECTORY ${_sat_onnx_gen})
# The sources include "onnx.pb-c.h", which protoc-c names after the schema file.
if(NOT _sat_onnx_name STREQUAL "onnx")
  message(FATAL_ERROR "SAT_ONNX_PROTO must name a file called onnx.proto")
endif()
add_custom_command(
  OUTPUT ${_sat_onnx_gen}/onnx.pb-c.c ${_sat_onnx_gen}/onnx.pb-c.h
  COMMAND ${ProtobufC_PROTOC_EXECUTABLE} --c_out=${_sat_onnx_gen}
          --proto_path=${_sat_onnx_dir} ${SAT_ONNX_PROTO}
  DEPENDS ${SAT_ONNX_PROTO}
  COMMENT "Generating the C code of ONNX's schema with protoc-c"
  VERBATIM)

# Generated code: compiled without the project's warnings (it is not ours to change).
add_library(sat_onnx_proto OBJECT ${_sat_onnx_gen}/onnx.pb-c.c)
set_target_properties(sat_onnx_proto PROPERTIES POSITION_INDEPENDENT_CODE ON
  C_VISIBILITY_PRESET hidden)
target_include_directories(sat_onnx_proto PUBLIC ${_sat_onnx_gen})
target_link_libraries(sat_onnx_proto PUBLIC ProtobufC::ProtobufC)
