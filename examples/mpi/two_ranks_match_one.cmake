# Runs sat-mpi-pgd (model MODEL) with 1 rank x 128, then 2 ranks x 64 comparing its model
# to the first within TOLERANCE.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(mpirun ${MPIEXEC} --allow-run-as-root --oversubscribe)
set(args --model ${MODEL} --steps 5 --batch 128)
execute_process(COMMAND ${mpirun} -np 1 ${PROGRAM} ${WORK}/one.model ${args} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mpirun -np 1 ${PROGRAM}: exit ${rc}")
endif()
execute_process(COMMAND ${mpirun} -np 2 ${PROGRAM} ${WORK}/two.model ${args}
                        --compare ${WORK}/one.model ${TOLERANCE} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mpirun -np 2 ${PROGRAM} --compare: exit ${rc} (weights differ or the run failed)")
endif()
