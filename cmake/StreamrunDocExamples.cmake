# Code shown in the documentation is compiled with the build (extract_doc_examples.cc says
# which code): an example that stops compiling breaks the build instead of misleading a reader.
add_executable(streamrun_extract_doc_examples ${CMAKE_CURRENT_LIST_DIR}/extract_doc_examples.cc)

# streamrun_doc_examples(TARGET FILES... DEPS targets...)
function(streamrun_doc_examples target)
  cmake_parse_arguments(ARG "" "" "FILES;DEPS" ${ARGN})
  set(source "${CMAKE_CURRENT_BINARY_DIR}/${target}.cc")
  add_custom_command(
    OUTPUT "${source}"
    COMMAND streamrun_extract_doc_examples "${source}" ${ARG_FILES}
    DEPENDS streamrun_extract_doc_examples ${ARG_FILES}
    COMMENT "Extracting the code examples of the documentation"
    VERBATIM)
  add_library(${target} OBJECT "${source}")
  target_link_libraries(${target} PRIVATE ${ARG_DEPS})
endfunction()
