/* rumor-sim: runs a simulated cluster and prints its metrics as one JSON object (sim_cli.c). */
#include "sim.h"

int main(int argc, char **argv)
{
    return rumor_sim_cli(argc, argv, stdout, stderr);
}
