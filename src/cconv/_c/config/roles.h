/* Tile roles (X_MR_role pixels or rows x X_NV_role vectors of output channels) that an ISA's
 * header, which includes this last, leaves to the defaults: no mid GEMM tile of its own (the
 * table names the wide one, of 2 vectors, instead), no channels-last one (cl: the wide one
 * instead); weight-gradient tiles of the GEMM's shapes. */
#ifndef GEMM_NV_mid
#define GEMM_NV_mid 0
#endif
#ifndef GEMM_NV_cl
#define GEMM_NV_cl 0
#endif
#ifndef GW_NV_wide
#define GW_MR_wide GEMM_MR_wide
#define GW_NV_wide GEMM_NV_wide
#endif
#define GW_MR_mid GEMM_MR_mid
#define GW_NV_mid GEMM_NV_mid
#define GW_MR_narrow GEMM_MR_narrow
#define GW_NV_narrow GEMM_NV_narrow
