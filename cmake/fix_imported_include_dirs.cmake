# Repairs include directories baked into the ROS 2 PyPI wheels' exported CMake targets.
#
# The `ros-kilted-*` wheels were built in a manylinux container, so targets such as
# `std_msgs::std_msgs__rosidl_generator_py` name `/opt/python/cp311-cp311/include/python3.11` and a
# NumPy include dir under that prefix. CMake refuses to generate while an imported target names a
# missing include directory, and there is no switch to turn that check off. The targets are
# imported by find_package() calls deep inside rosidl_generate_interfaces(), so this file cannot
# fix them up front: it defers a call to the end of the top-level directory's configure step and
# rewrites every missing Python/NumPy include dir on every imported target to the dirs of the
# Python CMake uses. Directories that exist are left alone, so on a regular ROS install this is a
# no-op.
#
# Use (plain cmake or colcon, it also works through `colcon build --cmake-args`):
#   -DCMAKE_PROJECT_INCLUDE=<repo>/cmake/fix_imported_include_dirs.cmake
# CMAKE_PROJECT_INCLUDE is included after every project() call; the include guard makes the
# deferral happen once, for the top-level project.

# No cmake_minimum_required() here: it would reset the including project's policies.
if(CMAKE_VERSION VERSION_LESS 3.19)
  message(FATAL_ERROR "fix_imported_include_dirs needs CMake >= 3.19 (cmake_language(DEFER))")
endif()
include_guard(GLOBAL)

function(_scenegen_collect_imported_targets directory out_var)
  get_property(targets DIRECTORY "${directory}" PROPERTY IMPORTED_TARGETS)
  get_property(subdirectories DIRECTORY "${directory}" PROPERTY SUBDIRECTORIES)
  foreach(subdirectory IN LISTS subdirectories)
    _scenegen_collect_imported_targets("${subdirectory}" sub_targets)
    list(APPEND targets ${sub_targets})
  endforeach()
  set(${out_var} "${targets}" PARENT_SCOPE)
endfunction()

function(_scenegen_python_include_dirs python_out numpy_out)
  if(Python3_EXECUTABLE)
    set(python "${Python3_EXECUTABLE}")
  else()
    find_package(Python3 REQUIRED COMPONENTS Interpreter)
    set(python "${Python3_EXECUTABLE}")
  endif()
  execute_process(
    COMMAND "${python}" -c "import sysconfig; print(sysconfig.get_paths()['include'])"
    OUTPUT_VARIABLE python_include OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE python_result)
  execute_process(
    COMMAND "${python}" -c "import numpy; print(numpy.get_include())"
    OUTPUT_VARIABLE numpy_include OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE numpy_result)
  if(NOT python_result EQUAL 0 OR NOT EXISTS "${python_include}")
    message(FATAL_ERROR "fix_imported_include_dirs: cannot find the include dir of ${python}")
  endif()
  if(NOT numpy_result EQUAL 0 OR NOT EXISTS "${numpy_include}")
    message(FATAL_ERROR "fix_imported_include_dirs: NumPy headers not found for ${python}")
  endif()
  set(${python_out} "${python_include}" PARENT_SCOPE)
  set(${numpy_out} "${numpy_include}" PARENT_SCOPE)
endfunction()

function(scenegen_fix_imported_include_dirs)
  _scenegen_collect_imported_targets("${CMAKE_SOURCE_DIR}" targets)
  set(python_include "")
  set(fixed 0)
  foreach(target IN LISTS targets)
    get_target_property(include_dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT include_dirs)
      continue()
    endif()
    set(new_dirs "")
    set(changed FALSE)
    foreach(dir IN LISTS include_dirs)
      # Generator expressions and existing dirs are not ours to touch.
      if(dir MATCHES "^\\$<" OR EXISTS "${dir}")
        list(APPEND new_dirs "${dir}")
        continue()
      endif()
      if(dir MATCHES "/numpy/(_core|core)/include$" OR dir MATCHES "/include/python3\\.[0-9]+")
        if(NOT python_include)
          _scenegen_python_include_dirs(python_include numpy_include)
        endif()
        if(dir MATCHES "numpy")
          list(APPEND new_dirs "${numpy_include}")
        else()
          list(APPEND new_dirs "${python_include}")
        endif()
        set(changed TRUE)
      else()
        list(APPEND new_dirs "${dir}")
      endif()
    endforeach()
    if(changed)
      list(REMOVE_DUPLICATES new_dirs)
      set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${new_dirs}")
      math(EXPR fixed "${fixed} + 1")
    endif()
  endforeach()
  if(fixed GREATER 0)
    message(STATUS "fix_imported_include_dirs: rewrote Python/NumPy include dirs of ${fixed} imported targets")
  endif()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL scenegen_fix_imported_include_dirs)
