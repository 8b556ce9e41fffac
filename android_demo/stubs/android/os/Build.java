package android.os;

public class Build {
    public static class VERSION {
        // Not a compile-time constant (no initializer here), so javac reads the phone's value.
        public static final int SDK_INT;

        static {
            SDK_INT = 0;
        }
    }

    public static class VERSION_CODES {
        public static final int R = 30;
    }
}
