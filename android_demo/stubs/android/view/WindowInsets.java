package android.view;

import android.graphics.Insets;

public final class WindowInsets {
    public int getSystemWindowInsetLeft() { throw new RuntimeException("Stub!"); }
    public int getSystemWindowInsetTop() { throw new RuntimeException("Stub!"); }
    public int getSystemWindowInsetRight() { throw new RuntimeException("Stub!"); }
    public int getSystemWindowInsetBottom() { throw new RuntimeException("Stub!"); }
    public Insets getInsets(int typeMask) { throw new RuntimeException("Stub!"); }

    public static final class Type {
        public static int systemBars() { throw new RuntimeException("Stub!"); }
        public static int displayCutout() { throw new RuntimeException("Stub!"); }
    }
}
