/* printf and strtod of floats and doubles: %f %e %g %a, large, small, subnormal, special. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  double d[] = {0.0, -0.0, 1.0, -1.5, 3.141592653589793, 2.718281828459045, 1e-300, 1e300, 123456789.123456789,
                0.1, 1.0 / 3.0, DBL_MAX, DBL_MIN, 4.9e-324, 5e-324 * 3, 1e22, 1e23, 9007199254740993.0};
  for (unsigned i = 0; i < sizeof d / sizeof *d; i++)
    printf("%.17g | %f | %e | %g | %a | %.3e | %10.4f\n", d[i], d[i], d[i], d[i], d[i], d[i], d[i]);
  float f[] = {0.1f, 1.0f / 3.0f, 16777217.0f, FLT_MAX, FLT_MIN, 1e-45f, -2.5f, 3.4e38f};
  for (unsigned i = 0; i < sizeof f / sizeof *f; i++) printf("%.9g %a %e\n", f[i], f[i], f[i]);
  printf("%f %f %f %e\n", INFINITY, -INFINITY, NAN, -INFINITY);
  const char *in[] = {"3.14159", "-2.5e-3", "1e400", "0x1.8p3", "  42.0abc", "nan", "-inf", "2.2250738585072011e-308", "0.1"};
  for (unsigned i = 0; i < sizeof in / sizeof *in; i++) {
    char *end;
    double v = strtod(in[i], &end);
    printf("strtod(%s)=%.17g rest=[%s]\n", in[i], v, end);
  }
  printf("strtof(0.1)=%.9g\n", strtof("0.1", NULL));
  double acc = 0;
  for (int i = 1; i <= 1000; i++) acc += 1.0 / ((double)i * i);
  printf("basel=%.15f sqrt=%.15f\n", acc, sqrt(acc * 6));
  printf("math: %.15g %.15g %.15g %.15g %.15g\n", sin(1.0), cos(1.0), exp(1.5), log(10.0), pow(2.0, 0.5));
  printf("floor/ceil/round: %g %g %g %g %g\n", floor(-2.5), ceil(-2.5), round(2.5), trunc(-2.7), fmod(7.5, 2.0));
  float fs = 0;
  for (int i = 0; i < 100000; i++) fs += 0.001f;
  printf("float sum=%.9g fma=%.17g\n", fs, fma(0.1, 10.0, -1.0));
  long double ld = 1.0L / 3.0L;
  printf("long double=%.30Lg\n", ld);
  printf("conv: %d %lld %u %d\n", (int)-3.99, (long long)1e18, (unsigned)3.99e9, (int)(float)16777217);
  return 0;
}
