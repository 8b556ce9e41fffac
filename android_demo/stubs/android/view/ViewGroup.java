package android.view;

public abstract class ViewGroup extends View {
    public void addView(View child) { throw new RuntimeException("Stub!"); }
    public void removeView(View view) { throw new RuntimeException("Stub!"); }
}
