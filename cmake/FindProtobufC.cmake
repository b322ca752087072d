# FindProtobufC.cmake - finds protobuf-c (the C runtime of Protocol Buffers) and its
# code generator protoc-c. libsat reads and writes ONNX files with it.
#
# Defines ProtobufC_FOUND, ProtobufC_INCLUDE_DIRS, ProtobufC_LIBRARIES, the imported
# target ProtobufC::ProtobufC and, when found, ProtobufC_PROTOC_EXECUTABLE (protoc-c;
# only the library is needed to link a static libsat, the generator only to build it).
find_path(ProtobufC_INCLUDE_DIR protobuf-c/protobuf-c.h)
find_library(ProtobufC_LIBRARY NAMES protobuf-c)
find_program(ProtobufC_PROTOC_EXECUTABLE NAMES protoc-c protoc-gen-c)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(ProtobufC
  REQUIRED_VARS ProtobufC_LIBRARY ProtobufC_INCLUDE_DIR)

if(ProtobufC_FOUND)
  set(ProtobufC_INCLUDE_DIRS ${ProtobufC_INCLUDE_DIR})
  set(ProtobufC_LIBRARIES ${ProtobufC_LIBRARY})
  if(NOT TARGET ProtobufC::ProtobufC)
    add_library(ProtobufC::ProtobufC UNKNOWN IMPORTED)
    set_target_properties(ProtobufC::ProtobufC PROPERTIES
      IMPORTED_LOCATION "${ProtobufC_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${ProtobufC_INCLUDE_DIR}")
  endif()
endif()
mark_as_advanced(ProtobufC_INCLUDE_DIR ProtobufC_LIBRARY ProtobufC_PROTOC_EXECUTABLE)
